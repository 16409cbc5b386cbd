"""Where things are: the workspace, the bundled demo data, and the files a report reads.

Plain paths, no pandas: `chart` asks here which files it would read before it decides whether
it needs to read them at all (see `cache.py`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

DEFAULT_DB = "marketdelta.duckdb"
DB_ENV = "MARKETDELTA_DB"


def workspace_path(db: str | Path | None) -> Path | None:
    """The workspace to read: --db, else $MARKETDELTA_DB, else ./marketdelta.duckdb if present."""
    if db is not None:
        return Path(db)
    if os.environ.get(DB_ENV):
        return Path(os.environ[DB_ENV])
    local = Path(DEFAULT_DB)
    return local if local.exists() else None


def import_path(db: str | Path | None) -> Path:
    """The workspace to write: --db, else $MARKETDELTA_DB, else ./marketdelta.duckdb."""
    return workspace_path(db) or Path(DEFAULT_DB)


def demo_dir() -> Path:
    """The demo data: inside the installed package, or the repository's `data/` when the
    package is installed in editable mode."""
    packaged = Path(__file__).resolve().parent / "data"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "data"


def demo_inputs(folder: Path) -> list[Path]:
    """The demo's manifest and survey files, in the order they are read."""
    return [folder / "surveys.toml", *sorted(folder.glob("*/*.csv"))]


def report_inputs(sources: Sequence[str | Path], db: str | Path | None) -> list[Path] | None:
    """The files a report reads, in the contract's order: the sources named, else (with no
    workspace) the bundled demo's. None when it reads a workspace."""
    if sources:
        return [Path(s) for s in sources]
    if workspace_path(db) is not None:
        return None
    return demo_inputs(demo_dir())
