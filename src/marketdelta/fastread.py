"""The fast path's first step: the cells of large plain survey files, read into DuckDB as text.

`read_raw` makes the table `raw` in one pass over the files: every cell as written (but year
and area cells that their value writes back the same way, `AS_WRITTEN`), a hash of each row's
market and town, and the typed columns (`CASTS`); a wide file's row (one column per year) as
one row per year. `fastpath.py` checks the cells and computes the report from there.

No pandas here. `marketdelta report` and `import` start the read on a thread
(`reading_early`, `importing_early`) and import pandas meanwhile, which takes most of a second
of one core. The read is a single SQL statement, with plain values as parameters, so DuckDB
runs it without the GIL; a call of its Python API such as `read_csv` would wait for pandas'
import to finish. A report or an import of 10⁶ markets takes ≈ 0.6 s less for it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import MarketdeltaError
from .header import column_names, plain_header, year_columns

# Inputs of at least this many observations (market-years, estimated) take the fast path:
# about 2,000 markets over 15 years. Below it, the reference path's first report takes under
# 0.8 s and the next come from its cache (0.43 s, against the fast path's 0.55 s every time).
FAST_OBSERVATIONS_ENV = "MARKETDELTA_FAST_OBSERVATIONS"
FAST_OBSERVATIONS_DEFAULT = 30_000
FAST_COLUMNS = {
    "market", "town", "province", "lat", "lon", "year", "stall_area_m2", "open_area_m2",
    "source", "status", "notes",
}  # fmt: skip

# DuckDB's reading of a cell, for each column with a rule; `fastpath` checks it against
# `survey.py`. Areas drop thousands separators only when the plain cast fails (a replace on
# every cell costs ≈ 0.4 s on 15 M rows).
AREA_CAST = "coalesce(try_cast({c} AS DOUBLE), try_cast(replace({c}, ',', '') AS DOUBLE))"
CASTS = {
    "year": "try_cast({c} AS INTEGER)",
    "stall_area_m2": AREA_CAST,
    "open_area_m2": AREA_CAST,
    "lat": "try_cast({c} AS DOUBLE)",
    "lon": "try_cast({c} AS DOUBLE)",
    "status": "CASE lower(trim({c})) WHEN 'open' THEN 'open' WHEN 'closed' THEN 'closed' END",
}
# How a typed value is written when `raw` may drop its cell: a cell that reads back as written
# (most of them) is stored as NULL, which saves ≈ 0.3 s and 0.16 GB on 15 M rows; see `read_raw`.
AS_WRITTEN = {
    "year": "CAST({t} AS VARCHAR)",
    "stall_area_m2": "CAST(try_cast({t} AS BIGINT) AS VARCHAR)",
    "open_area_m2": "CAST(try_cast({t} AS BIGINT) AS VARCHAR)",
}
# The key of a (market, town) pair as written; `fastpath` declines pairs that share one.
PAIR_HASH = "hash(market, town)"
Header = tuple[list[str], str]  # the normalised column names and the delimiter


def fast_path_wanted(sources: Sequence[str | Path]) -> bool:
    """Are the files large enough for the DuckDB fast path (`fastpath.py`) to pay off? The
    cost of either path follows the observations, not the bytes: a wide file holds about
    six times as many per byte as a long one."""
    threshold = _fast_observations()
    paths = [Path(s) for s in sources]
    if not paths or any(str(p) == "-" or not p.is_file() for p in paths):
        return False
    try:
        return sum(map(estimated_observations, paths)) >= threshold
    except OSError:  # the reference reader says what is wrong with the file
        return False


def _fast_observations() -> int:
    setting = os.environ.get(FAST_OBSERVATIONS_ENV, "").strip()
    if not setting:
        return FAST_OBSERVATIONS_DEFAULT
    if not setting.isdigit():
        raise MarketdeltaError(
            f"{FAST_OBSERVATIONS_ENV}={setting!r}: give a number of observations, such as "
            f"100000 (0: always), or unset it for the default ({FAST_OBSERVATIONS_DEFAULT:,})"
        )
    return int(setting)


def estimated_observations(path: Path, sample: int = 1 << 16) -> int:
    """About how many observations (market-years) a survey file holds: its data lines,
    counted in the first `sample` bytes and scaled to the file's size, times its year columns
    if it is wide (one row a market), else one (one row a market and year)."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(sample)
    first, _, rest = head.partition(b"\n")
    names, _ = column_names(first.decode("utf-8-sig", errors="replace").rstrip("\r"))
    per_line = max(1, len(year_columns(names)))
    breaks = rest.count(b"\n")
    if size <= len(head):
        lines = breaks + (not rest.endswith(b"\n") and bool(rest.strip()))
    elif breaks:
        measured = rest.rfind(b"\n") + 1  # the bytes of the whole lines sampled
        lines = round(breaks * (size - len(first) - 1) / measured)
    else:  # no line ends in the sample: count bytes, as if each were a line
        lines = size
    return lines * per_line


def plain_headers(sources: Sequence[str | Path], year: int | None) -> list[Header] | None:
    """Each file's header, if every file is one the fast reader takes; else None. A path
    DuckDB would read as a pattern (`*`, `?`, `[`) is left to the reference reader too."""
    if any(set(str(s)) & set("*?[") for s in sources):
        return None
    try:
        headers = [plain_header(Path(s), year) for s in sources]
    except OSError:  # the reference reader says what is wrong with the file
        return None
    return None if any(h is None for h in headers) else headers  # type: ignore[return-value]


def numbers_files(sources: Sequence[str | Path]) -> bool:
    """Does `read_raw` give each row its file's number (`file`)? Only when there are several
    files: a constant column costs ≈ 0.2 s on 15 M rows."""
    return len(sources) > 1


def casts(present: set[str], year: int | None) -> dict[str, str]:
    """SQL reading each column with a rule that the files have; `year` is the year given for
    files without a year column."""
    typed = {c: cast.format(c=c) for c, cast in CASTS.items() if c in present}
    if year is not None:
        typed["year"] = f"coalesce({typed['year']}, {int(year)})"
    return typed


def present_columns(headers: Sequence[Header], year: int | None) -> set[str]:
    """The columns the files' rows have once read (a wide file's as long rows)."""
    return {n for names, _ in headers for n in _long_columns(names)} | (
        {"year"} if year is not None else set()
    )


def _long_columns(names: list[str]) -> list[str]:
    years = year_columns(names)
    if not years:
        return names
    return [n for n in names if n not in years] + ["year", "stall_area_m2"]


def read_raw(
    con, sources: Sequence[str | Path], headers: Sequence[Header], year: int | None
) -> None:
    """Read every file into the temporary table `raw`, in one statement: the columns the fast
    path knows as text (NULL where a file lacks one), the file's number (`numbers_files`),
    the hash of the (market, town) pair as written, and each column with a rule as DuckDB reads
    it (`_year`, `_stall_area_m2`, ...).

    A year or area cell that its value writes back the same way (`AS_WRITTEN`: `2011` for
    2011, `900` for 900.0) is stored as NULL: `written_cells` gives it back. Only the other
    cells (`1,200`, ` 900`, `9e2`, ...) are kept as text."""
    present = present_columns(headers, year)
    stored = sorted((FAST_COLUMNS & present) | {"town"})  # absent columns are not stored
    parts, parameters = [], {}
    for index, (source, (names, delimiter)) in enumerate(zip(sources, headers, strict=True)):
        # The columns are named by position (c0, c1, ...): no text of the file is put into the
        # SQL. The path and delimiter are parameters; a dict parameter would make DuckDB wait
        # for pandas' import, so the columns are written out.
        select = ", ".join(_cells(names, stored))
        columns = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(names)))
        parameters |= {f"path_{index}": str(source), f"delimiter_{index}": delimiter}
        # No sniffing: the header is known, and sniffing costs 15-35 ms, more for larger files.
        read = f"""read_csv($path_{index}, header = true, auto_detect = false,
                            columns = {{{columns}}}, delim = $delimiter_{index},
                            quote = '"', escape = '"')"""
        number = f", {index} AS file" if numbers_files(sources) else ""
        parts.append(f"SELECT {select}{number} FROM {read}")
    typed = casts(present, year)
    dropped = ", ".join(
        f"CASE WHEN {c} = {AS_WRITTEN[c].format(t=f'_{c}')} THEN NULL ELSE {c} END AS {c}"
        for c in typed
        if c in AS_WRITTEN and c in stored
    )
    con.execute(
        f"""CREATE TEMP TABLE raw AS
            SELECT * {f"REPLACE ({dropped})" if dropped else ""} FROM (
              SELECT *, {PAIR_HASH} AS h,
                     {", ".join(f"{cast} AS _{column}" for column, cast in typed.items())}
              FROM ({" UNION ALL ".join(parts)}))""",
        parameters,
    )


def _cells(names: list[str], stored: list[str]) -> list[str]:
    """SQL for the `stored` columns of a file with the columns `names`, by position. A wide
    file's row becomes one row per year column: its year (the header's four ASCII digits,
    the only text of a file written into the SQL) and that column's cell, blank ones too, as
    the reference reader's melt does."""
    position = {name: i for i, name in enumerate(names)}
    years = year_columns(names)
    wide = {
        "year": f"unnest([{', '.join(repr(y) for y in years)}])",
        "stall_area_m2": f"unnest([{', '.join(f'c{position[y]}' for y in years)}])",
    }
    return [
        f"{wide[c]} AS {c}" if years and c in wide
        else f"c{position[c]} AS {c}" if c in position
        else f"NULL::VARCHAR AS {c}"
        for c in stored
    ]  # fmt: skip


def written_cells(column: str) -> str:
    """SQL: the distinct cells (`cell`) of a column of `raw` with a rule, as the files wrote
    them; a blank cell is NULL. Where a year is given for blank cells, a blank cell is given as
    that year, which reads the same.

    The cells kept as text and the values of the others are found apart: the distinct values
    of one typed column are found twice as fast as those of a pair with a text (0.12-0.15 s
    against 0.22-0.28 s for both columns of 15 M rows)."""
    if column not in AS_WRITTEN:
        return f"SELECT DISTINCT {column} AS cell FROM raw"
    written = AS_WRITTEN[column].format(t="v")
    return f"""SELECT DISTINCT {written} AS cell
               FROM (SELECT DISTINCT _{column} AS v FROM raw WHERE {column} IS NULL)
               UNION SELECT DISTINCT {column} FROM raw WHERE {column} IS NOT NULL"""


class RawRead:
    """`read_raw` of plain files, running on a thread, in `connection` (a new in-memory one if
    not given), which it closes when closed."""

    def __init__(
        self,
        sources: Sequence[str | Path],
        headers: list[Header],
        year: int | None,
        connection=None,
    ):
        from .engine import quiet_connection

        self.sources, self.headers, self.year = list(sources), headers, year
        self.connection = connection or quiet_connection()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            read_raw(self.connection, self.sources, self.headers, self.year)
        except BaseException as error:  # raised again, in the caller's thread, by `wait`
            self._error = error

    def wait(self):
        """The connection, once `raw` is read; raises what the read raised (`duckdb.Error`)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self.connection

    def close(self) -> None:
        """Stop the read if it still runs, and close the connection."""
        if self._thread.is_alive():
            self.connection.interrupt()
            self._thread.join()
        self.connection.close()


def start_reading(sources: Sequence[str | Path], year: int | None) -> RawRead | None:
    """Start reading plain files into DuckDB on a thread; None if one is not plain."""
    headers = plain_headers(sources, year)
    return None if headers is None else RawRead(sources, headers, year)


@contextmanager
def reading_early(
    sources: Sequence[str | Path], year: int | None, compare: str | None = None
) -> Iterator[RawRead | None]:
    """The read of the files a report takes by the fast path, started now on a thread, while
    the caller imports what it needs; None for files the fast path does not take."""
    reading = None
    if sources and compare is None and fast_path_wanted(sources):
        reading = start_reading(sources, year)
    try:
        yield reading
    finally:
        if reading is not None:
            reading.close()


@dataclass
class EarlyImport:
    """A fast import's start: the read of its files into the workspace's connection, and
    whether the workspace is new (nothing stored in it when the connection opened it)."""

    reading: RawRead
    fresh: bool


@contextmanager
def importing_early(
    sources: Sequence[str | Path],
    path: Path,
    year: int | None,
    *,
    replace: bool,
    strict: bool,
    dry_run: bool,
) -> Iterator[EarlyImport | None]:
    """For an import the fast path may take (large plain files, and none of `replace`,
    `strict` or `dry_run`, which the fast import does not do): the workspace opened now,
    waiting for its lock, with the files' read into it started on a thread while the caller
    imports what it needs; else None. The workspace must not be used before the read ends
    (`RawRead.wait`): a DuckDB connection serves one thread at a time."""
    headers = None
    allowed = not (replace or strict or dry_run)
    if allowed and fast_path_wanted(sources) and path.parent.is_dir():
        headers = plain_headers(sources, year)
    if headers is None:
        yield None
        return
    from .engine import connect_workspace

    connection = connect_workspace(path, read_only=False)
    # Fresh: nothing stored in it yet. Not "the file did not exist": another import may have
    # made it, and finished, while this one waited for the lock.
    tables = "SELECT count(*) FROM duckdb_tables() WHERE NOT temporary"
    fresh = connection.execute(tables).fetchall()[0][0] == 0
    reading = RawRead(sources, headers, year, connection)
    try:
        yield EarlyImport(reading, fresh)
    except BaseException:  # Ctrl-C too: a new workspace the import did not finish is removed
        try:
            reading.close()
        finally:
            if fresh:
                remove_workspace(path)
        raise
    reading.close()


def remove_workspace(path: Path) -> None:
    """Remove a workspace's files (the database and its write-ahead log): what an import that
    created the workspace and did not finish leaves."""
    for leftover in (path, path.with_name(path.name + ".wal")):
        leftover.unlink(missing_ok=True)
