"""`marketdelta --help` must start instantly: no pandas, matplotlib or duckdb on that path."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
from marketdelta.cli import main
sys.argv = ["marketdelta", "--help"]
try:
    main()
except SystemExit:
    pass
heavy = [m for m in ("pandas", "matplotlib", "duckdb", "numpy", "pyarrow") if m in sys.modules]
print("HEAVY:" + ",".join(heavy))
"""


def test_help_imports_nothing_heavy():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert "HEAVY:\n" in out.stdout, out.stdout
    assert "report" in out.stdout


def test_every_command_has_help(run):
    for command in ("report", "validate", "chart", "import", "status"):
        result = run(command, "--help")
        assert result.exit_code == 0
        assert "Example:" in result.stdout
