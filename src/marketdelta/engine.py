"""DuckDB connections, as every command opens them. No pandas: the fast path opens one and
starts reading before pandas is imported (`fastread.py`)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import duckdb

from .errors import MarketdeltaError, WorkspaceError

THREADS_ENV = "MARKETDELTA_THREADS"  # cores DuckDB may use (default: all)
LOCK_WAIT_ENV = "MARKETDELTA_LOCK_WAIT"  # seconds to wait for a busy workspace (default 5)


def quiet_connection(database: str = ":memory:", read_only: bool = False):
    """A DuckDB connection that never draws its own progress bar (it would land in our
    output, e.g. in the middle of a JSON report), on `$MARKETDELTA_THREADS` cores if set."""
    config = {"threads": threads} if (threads := _threads()) else {}
    connection = duckdb.connect(database, read_only=read_only, config=config)
    connection.execute("SET enable_progress_bar = false")
    return connection


def _threads() -> int | None:
    setting = os.environ.get(THREADS_ENV, "").strip()
    if not setting:
        return None
    if not setting.isdigit() or int(setting) < 1:
        raise MarketdeltaError(
            f"{THREADS_ENV}={setting!r}: give a number of cores, such as 2, or unset it to use all"
        )
    return int(setting)


def connect_workspace(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    """Open a workspace's database file, waiting a few seconds (`$MARKETDELTA_LOCK_WAIT`) if
    another process holds it."""
    deadline = time.monotonic() + float(os.environ.get(LOCK_WAIT_ENV, "5"))
    while True:
        try:
            return quiet_connection(str(path), read_only=read_only)
        except duckdb.IOException as error:
            text = str(error)
            if "lock" not in text.lower():
                raise WorkspaceError(
                    f"{path}: cannot open the workspace ({first_line(text)})"
                ) from None
            if time.monotonic() > deadline:
                raise WorkspaceError(
                    f"{path}: the workspace is in use by another marketdelta command; "
                    "try again when it has finished"
                ) from None
            time.sleep(0.1)
        except duckdb.Error as error:
            raise WorkspaceError(
                f"{path}: not a marketdelta workspace or not readable "
                f"({first_line(str(error))}); choose another path with --db"
            ) from None


def first_line(text: str) -> str:
    """The first line of DuckDB's message, for ours."""
    return text.strip().splitlines()[0] if text.strip() else text
