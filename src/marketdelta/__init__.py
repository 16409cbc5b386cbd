"""marketdelta: market-area change from yearly survey CSVs, as a library and a command line.

    import marketdelta as md
    result = md.build_report(md.demo())
    result.to_dict()["net_m2"]   # 9905

The functions are loaded on first use, so `import marketdelta` (and `marketdelta --help`) stay
fast: see `marketdelta.api` for their documentation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .__about__ import __version__

__all__ = [
    "__version__", "build_report", "demo", "draw", "import_surveys", "read", "read_surveys",
    "workspace",
]  # fmt: skip

if TYPE_CHECKING:
    from .api import build_report, demo, draw, import_surveys, read, read_surveys, workspace


def __getattr__(name: str):
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'marketdelta' has no attribute {name!r}")
