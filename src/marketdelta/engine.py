"""DuckDB connections, as every command opens them. No pandas: the fast path opens one and
starts reading before pandas is imported (`fastread.py`)."""

from __future__ import annotations

import os

import duckdb

from .errors import MarketdeltaError

THREADS_ENV = "MARKETDELTA_THREADS"  # cores DuckDB may use (default: all)


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
