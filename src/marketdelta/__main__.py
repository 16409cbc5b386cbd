"""`python -m marketdelta` is the `marketdelta` command."""

from .cli import main

main()
