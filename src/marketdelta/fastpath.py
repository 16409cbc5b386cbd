"""The DuckDB fast path: large survey files and workspaces computed inside DuckDB.

The reference path (`survey` → `identity` → `metrics`, in pandas) is the definition; this module
computes the same panel-level ingredients (baseline and end per market, the annual series, the
closed markets' histories) with SQL, so that a million markets take seconds, and hands them to
`report.market_figures` and `report.assemble`, which compute every other figure exactly as the
reference path does.

For files, the fast path is only taken for plain files (long or wide layout) whose every cell
passes the same rules as `survey.py`. Anything else — a bad cell, a duplicate row, an unusual
column, a non-ASCII name — returns None, and the caller uses the reference reader, which
explains the problem precisely. Tests check that both paths give the same report.

How the files flow, table by table (all temporary, in one DuckDB connection):
`raw` (`fastread.read_raw`, started before pandas is imported: the cells as text, but for year
and area cells that their value writes back; a hash of each row's market and town as written;
the typed columns) → `obs` (a view of typed
observations keyed by that hash) → `measured` (`obs` with the area of the report's measure) →
`described` (one row per spelling: names, baseline, end, checks) and `labels` (each
spelling's key, rule 2 of market identity) → rule 3 on the few candidates, after which
`described` is computed again for the merged markets → `panel` (the rows the annual window,
partitioned by the hash, and the closures list read). A workspace starts at `obs`, a
view of its stored observations of one survey, keyed by market number. A fast import stores
`incoming` (`obs` with its cells cleaned) and each group's market (`keys`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from . import metrics
from .errors import MarketdeltaError
from .fastread import (
    FAST_COLUMNS,
    EarlyImport,
    Header,
    RawRead,
    casts,
    numbers_files,
    present_columns,
    start_reading,
    written_cells,
)
from .header import year_columns
from .identity import CELL_DEGREES, fuzzy_merges, with_history
from .report import Report, ReportOptions, assemble, market_figures, period
from .sources import SurveyInfo
from .survey import DEFAULT_SURVEY, FIRST_YEAR, CellChecker, ReadOptions

MEASURE_SQL = {
    "stall": "stall_area_m2",
    "open": "open_area_m2",
    "total": "stall_area_m2 + coalesce(open_area_m2, 0)",
}


class _Decline(Exception):
    """The fast path cannot give the reference path's answer for these files."""


def report_from_files(
    sources: Sequence[str | Path],
    read: ReadOptions,
    options: ReportOptions,
    reading: RawRead | None = None,
) -> Report | None:
    """The report, computed in DuckDB; None when the files need the reference reader.
    `reading` is the files' read, if the caller started it (`fastread.reading_early`)."""
    if options.compare:
        return None
    own = reading is None
    reading = reading or start_reading(sources, read.year)
    if reading is None:
        return None
    try:
        con = reading.wait()
        present = present_columns(reading.headers, read.year)
        if not _observations(con, sources, reading.headers, read):
            return None
        survey = SurveyInfo(read.survey or DEFAULT_SURVEY)
        return _report(con, survey, None, options, "files", present)
    except (duckdb.Error, _Decline):
        return None
    finally:
        if own:
            reading.close()


@dataclass
class FastImport:
    """What a fast import did, summarised like `store.ImportPlan.summary`."""

    files: int
    added: int
    merges: list[str]

    def summary(self, dry_run: bool = False) -> list[str]:
        return [f"{self.files} file(s): added {self.added} observations, replaced 0, "
                "0 already present", *self.merges]  # fmt: skip


def import_into(
    path: Path, sources, read: ReadOptions, declarations, early: EarlyImport
) -> FastImport | None:
    """`import_files` into the workspace at `path`, on the early import's connection
    (`fastread.importing_early`) once its read has ended, and closed here (the reference
    import opens it again)."""
    from .store import Workspace

    try:
        connection = early.reading.wait()
    except duckdb.Error:  # the reference reader says what is wrong with the file
        early.reading.close()
        return None
    with Workspace.open(path, write=True, connection=connection) as workspace:
        return import_files(workspace, sources, read, declarations, early.reading)


def import_files(
    workspace, sources, read: ReadOptions, declarations, reading: RawRead
) -> FastImport | None:
    """Import large plain files inside DuckDB, in one transaction; None when the reference
    import must decide (already imported, rows already in the workspace, possible fuzzy
    merges, anything the fast reader declines). `reading` is the files' read into the
    workspace's connection, done (`fastread.importing_early`)."""
    from .store import DETAIL_COLUMNS

    con = workspace.db
    headers = reading.headers
    survey = read.survey or DEFAULT_SURVEY
    fresh = workspace.is_new
    with ThreadPoolExecutor(max_workers=1) as pool:  # hashing releases the GIL while DuckDB works
        hashing = pool.submit(lambda: [_read_bytes(Path(s)) for s in sources])
        try:
            grouped = _grouped_rows(con, sources, headers, read, survey, existing=not fresh)
        except (duckdb.Error, _Decline):
            grouped = None
        try:
            read_bytes = hashing.result()
        except OSError:  # the reference import says what is wrong with the file
            return None
    hashes = [b.sha256 for b in read_bytes]
    if (
        grouped is None
        or set(hashes) & workspace.imported_hashes()
        or len(set(hashes)) != len(hashes)
    ):
        return None
    counts = con.execute(
        """SELECT file, min(row) AS first_row, count(*) AS rows,
                  max(row) - min(row) + 1 AS lines
           FROM incoming GROUP BY file"""
    ).df()
    files = (
        pd.DataFrame({"file": range(len(sources)), "name": [str(s) for s in sources]})
        .assign(sha256=hashes)
        .merge(counts, on="file", how="left")
        .fillna({"first_row": 0, "rows": 0, "lines": 0})
        .astype({"first_row": "int64", "rows": "int64", "lines": "int64"})
    )
    if not all(map(_FileBytes.one_line_a_row, read_bytes, files["lines"])):
        return None  # lines are stored as positions
    present, one_group_each = grouped
    added = workspace.apply_fast(
        survey,
        files,
        declarations,
        details=[c for c in DETAIL_COLUMNS if c in present],
        exact=fresh and not {"province", "lat", "lon"} & present,
        one_group_each=one_group_each,
    )
    return FastImport(len(sources), added, [])


def _grouped_rows(con, sources, headers, read: ReadOptions, survey: str, existing: bool):
    """From the files' cells in `raw`, define the view `incoming` (the rows to store, keyed by
    spelling group, with their cells as the reference reader cleans them) and `keys` (each
    group's label, market key, spelling, town, province and coordinates, first year, first row
    and file number; a view of `described` for a new workspace, a table joined to the aliases
    otherwise).
    Returns the columns the files have and whether each market is one group, or None when
    the reference import must decide."""
    present = present_columns(headers, read.year)
    if not _observations(con, sources, headers, read):
        return None
    con.execute("CREATE OR REPLACE TEMP VIEW measured AS SELECT * FROM obs")
    _hashed_groups(con, present, None)
    alias = "LEFT JOIN aliases a ON a.label = d.label" if existing else ""
    kind = "TABLE" if existing else "VIEW"  # a new workspace's keys are the labels: no join
    con.execute(
        f"""CREATE OR REPLACE TEMP {kind} keys AS
        SELECT d.market_key, d.label, {"coalesce(a.market_key, d.label)" if existing else "d.label"}
                   AS key, d.market AS spelling, d.town, d.province, d.lat, d.lon, d.first_year,
               d.first_row, d.first_file
        FROM described d {alias}"""
    )
    one_group_each = con.execute("SELECT count(*) = count(DISTINCT key) FROM keys").fetchall()[0][0]
    if _fuzzy_partners(con, existing, one_group_each):
        return None
    con.execute(
        """CREATE OR REPLACE TEMP VIEW incoming AS
        SELECT market_key, year, stall_area_m2, open_area_m2, file, row,
               nullif(trim(province), '') AS province, lat, lon,
               nullif(trim(source), '') AS source, status, nullif(trim(notes), '') AS notes
        FROM obs"""
    )
    twice = """WITH shared AS (SELECT market_key FROM keys WHERE key IN
                                 (SELECT key FROM keys GROUP BY key HAVING count(*) > 1))
               SELECT count(*) FROM (
                 SELECT 1 FROM incoming o JOIN keys k USING (market_key)
                 WHERE o.market_key IN (SELECT market_key FROM shared)
                 GROUP BY k.key, o.year HAVING count(*) > 1)"""
    if not one_group_each and con.execute(twice).fetchall()[0][0]:
        return None
    clash = """SELECT count(*) FROM incoming o JOIN keys k USING (market_key)
               JOIN markets m ON m.market_key = k.key
               JOIN observed x ON x.market_no = m.market_no AND x.year = o.year
               JOIN surveys s ON s.survey_no = x.survey_no AND s.name = ?"""
    if existing and con.execute(clash, [survey]).fetchall()[0][0]:
        return None
    return present, one_group_each


@dataclass(frozen=True)
class _FileBytes:
    """What one read of a file tells: its SHA-256, its line breaks (`\\n`), its carriage
    returns not followed by one (a line break to CSV readers too), whether it ends with one."""

    sha256: str
    line_breaks: int
    lone_returns: int
    ends_with_break: bool

    def one_line_a_row(self, rows: int) -> bool:
        """Is each of `rows` data rows (a wide file's rows, not its observations) one line after
        the header (no blank lines, no line breaks inside quotes), so that a row's line is its
        position?"""
        return self.line_breaks == rows + 1 and self.lone_returns == 0 and self.ends_with_break


def _read_bytes(path: Path, block_size: int = 1 << 22) -> _FileBytes:
    digest, breaks, returns, pairs, last = hashlib.sha256(), 0, 0, 0, b""
    with path.open("rb") as handle:
        while block := handle.read(block_size):
            digest.update(block)
            breaks += _line_feeds(block)
            if b"\r" in block:
                returns += block.count(b"\r")
                pairs += (last + block).count(b"\r\n")  # a pair may straddle two blocks
            elif last == b"\r" and block.startswith(b"\n"):
                pairs += 1
            last = block[-1:]
    return _FileBytes(digest.hexdigest(), breaks, returns - pairs, last == b"\n")


def _line_feeds(block: bytes) -> int:
    """The `\\n` bytes in `block`, counted by numpy: four times as fast as `bytes.count`, and
    without holding the GIL, while DuckDB reads the same file on the other cores."""
    return int(np.count_nonzero(np.frombuffer(block, np.uint8) == ord("\n")))


def _fuzzy_partners(con, existing: bool, one_group_each: bool) -> bool:
    """Could rule 3 merge a new market with another (new or already in the workspace)?
    With `one_group_each`, each market of `keys` is one spelling group: no need to group."""
    old, new_only = "", ""
    if existing:
        old = "UNION ALL SELECT market_key, name, town, lat, lon, false FROM markets"
        new_only = "WHERE k.key NOT IN (SELECT market_key FROM markets)"
    groups = f"""(SELECT k.key, arg_min(d.market, d.first_year) AS market,
                         arg_min(d.town, d.first_year) AS town,
                         arg_min(d.lat, d.placed_year) AS lat,
                         arg_min(d.lon, d.placed_year) AS lon, true AS new
                  FROM keys k JOIN described d USING (market_key) {new_only}
                  GROUP BY k.key {old})"""
    if one_group_each:
        groups = f"""(SELECT k.key, k.spelling AS market, k.town, k.lat, k.lon, true AS new
                      FROM keys k {new_only} {old})"""
    placed = con.execute("SELECT bool_or(lat IS NOT NULL) FROM described").fetchall()[0][0]
    flagged = _with_candidate_flag(groups, bool(placed))
    query = f"SELECT count(*) FROM ({flagged}) WHERE new AND candidate"
    return bool(con.execute(query).fetchall()[0][0])


def _with_candidate_flag(source: str, placed: bool) -> str:
    """SQL for the groups of `source` (market, town, lat, lon, ...) with their `name_key`,
    `town_key`, `numbers` and `candidate`: could rule 3 pair the group with another one (same
    town, or a neighbouring map cell, and the same numbers in the name)? Over-inclusive by
    design; `identity.fuzzy_merges` decides. Groups are compared by all the digits of their
    names, in order: equal whenever their numbers are equal, and one regular expression a name
    instead of three. Map cells are only counted if some group of interest is `placed` (has
    coordinates)."""
    by_cell = ", ".join(
        f"count(*) OVER (PARTITION BY digits, (fy + {dy}) // 2, (fx + {dx}) // 2)"
        for dy in (0, 1)
        for dx in (0, 1)
    )
    by_cell = by_cell if placed else "0"
    return rf"""WITH keyed AS (
          SELECT *,
            lower(replace(coalesce(town, ''), ' ', '')) AS town_key,
            array_to_string(regexp_extract_all(market, '\d+'), '') AS digits,
            floor(lat / {CELL_DEGREES})::BIGINT AS fy, floor(lon / {CELL_DEGREES})::BIGINT AS fx
          FROM {source}),
        counted AS (
          SELECT *, count(*) OVER (PARTITION BY town_key, digits) AS by_town,
                 greatest({by_cell}) AS by_cell
          FROM keyed),
        flagged AS (
          SELECT * EXCLUDE (fy, fx, by_town, by_cell, digits),
                 (town_key <> '' AND by_town > 1) OR (fy IS NOT NULL AND by_cell > 1) AS candidate
          FROM counted),
        named AS (
          SELECT *,
            regexp_replace(lower(replace(market, ' ', '')), '[^\w#]', '', 'g') AS name_key
          FROM flagged)
        SELECT *, regexp_extract_all(name_key, '\d+') AS numbers FROM named"""


def report_from_workspace(
    con: duckdb.DuckDBPyConnection,
    surveys: dict[str, SurveyInfo],
    names: list[str],
    default: str | None,
    options: ReportOptions,
    origin: str,
) -> Report:
    """The report on a workspace's observations, without loading them into pandas."""
    from .sources import Panel

    chooser = Panel(pd.DataFrame({"survey": names}), surveys, origin, default_survey=default)
    survey = chooser.survey(options.survey)
    other = chooser.comparison_for(survey, options.compare)
    _survey_view(con, "obs", survey.name)
    return _report(con, survey, other, options, origin, None)


# ------------------------------------------------------------------------------ reading


def _observations(con, sources, headers: list[Header], read: ReadOptions) -> bool:
    """Check the cells of `raw` (`fastread.read_raw`) and define the view `obs` of its typed
    observations keyed by a hash of the (market, town) pair as written, with their row's
    position (`row`: a wide file's rows count once, not once a year). False if any cell
    breaks a rule of `survey.py` (the reference reader will then explain it).

    The cell rules are checked on each column's distinct values (a few thousand, not millions
    of rows), by `survey.py`'s own code, and DuckDB's casts are checked to agree with it there;
    the rules across columns and the names are checked in SQL."""
    present = present_columns(headers, read.year)
    stored = (FAST_COLUMNS & present) | {"town"}
    names = pd.DataFrame({"file": range(len(sources)), "name": [str(s) for s in sources]})
    con.register("file_names", names)
    typed = casts(present, read.year)
    if (
        _a_file_without_rows(con, len(sources))
        or not _casts_agree(con, typed, read)
        or _rows_break_rules(con, present)
        or _trimmed_otherwise(con, present)
    ):
        return False

    def text(c: str) -> str:
        return c if c in stored else f"NULL::VARCHAR AS {c}"

    def number(c: str, kind: str = "DOUBLE") -> str:
        return f"_{c} AS {c}" if c in typed else f"NULL::{kind} AS {c}"

    file = "file" if numbers_files(sources) else "0 AS file"
    stall = "_stall_area_m2"
    if "status" in typed:
        stall = f"CASE WHEN _status = 'closed' THEN coalesce({stall}, 0) ELSE {stall} END"
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW obs AS
        SELECT h AS market_key, market, town, {text("province")}, {number("lat")},
               {number("lon")}, NULL::VARCHAR AS market_id, _year AS year,
               {stall} AS stall_area_m2, {number("open_area_m2")},
               {number("status", "VARCHAR")}, {text("source")}, {text("notes")}, {file},
               {_row_positions(con, headers)} AS row
        FROM raw"""
    )
    return True


def _row_positions(con, headers: list[Header]) -> str:
    """SQL for the position of each row of `raw` among the files' rows, as `rowid` is for a
    long file. A wide file's row is read as one row a year (`fastread.read_raw`), so its
    position is its file's first `rowid` plus its row's number in the file: the stored lines
    and the order markets are first seen in follow from it."""
    years = [len(year_columns(names)) for names, _ in headers]
    if not any(years):
        return "rowid"
    if len(headers) == 1:
        return f"rowid // {years[0]}"
    first = dict(con.execute("SELECT file, min(rowid) FROM raw GROUP BY file").fetchall())
    wide = " ".join(
        f"WHEN {file} THEN {first[file]} + (rowid - {first[file]}) // {count}"
        for file, count in enumerate(years)
        if count and file in first  # a file of no rows has no first row
    )
    return f"CASE file {wide} ELSE rowid END" if wide else "rowid"


def _casts_agree(con, typed: dict[str, str], read: ReadOptions) -> bool:
    """Does every distinct value of each column pass the rules of `survey.py`, and does DuckDB
    read it as `survey.py` does?"""
    for column, expression in typed.items():
        values = [v for (v,) in con.execute(written_cells(column)).fetchall()]
        expected = _reference_reading(column, values, read)
        if expected is None:
            return False
        con.register("cell_values", pd.DataFrame({column: pd.Series(values, dtype="object")}))
        got = con.execute(f"SELECT {expression} FROM cell_values").df().iloc[:, 0]
        if not _same_values(got, expected):
            return False
    return True


def _reference_reading(column: str, values: list, read: ReadOptions) -> pd.Series | None:
    """`survey.py`'s reading of the values of one column, or None if it refuses any."""
    cells = pd.DataFrame({column: pd.Series(values, dtype="object"), "_file": "", "_line": 0})
    checker = CellChecker(cells)
    readers = {
        "year": lambda: checker.year(read.year),
        "status": checker.status,
        "lat": lambda: checker.signed(column),
        "lon": lambda: checker.signed(column),
    }
    reading = readers.get(column, lambda: checker.area(column))()
    return None if checker.problems else reading


def _same_values(got: pd.Series, expected: pd.Series) -> bool:
    def cells(values: pd.Series) -> list:
        return values.astype(object).where(values.notna(), None).tolist()

    return cells(got) == cells(expected)


def _a_file_without_rows(con, files: int) -> bool:
    """Has a file no data rows (the reference reader refuses it)? Several files are counted by
    their number (`fastread.numbers_files`)."""
    if files == 1:
        return con.execute("SELECT count(*) = 0 FROM raw").fetchall()[0][0]
    return con.execute("SELECT count(DISTINCT file) FROM raw").fetchall()[0][0] < files


def _rows_break_rules(con, present: set[str]) -> bool:
    """The rules across columns of `survey.py`, on every row."""
    rules = []
    if "status" in present:
        rules.append("_status = 'closed' AND _stall_area_m2 > 0")
    if {"lat", "lon"} & present:
        lat, lon = (f"_{c}" if c in present else "NULL" for c in ("lat", "lon"))
        rules.append(f"({lat} IS NULL) <> ({lon} IS NULL)")
    if not rules:
        return False
    query = f"SELECT count(*) FROM raw WHERE {' OR '.join(f'({r})' for r in rules)}"
    return bool(con.execute(query).fetchall()[0][0])


# A character Python's `str.strip` removes and DuckDB's `trim` keeps (it removes spaces only),
# or another control character.
_STRIPPED = (
    r"[\x00-\x1f\x7f\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}"
    r"\x{3000}]"
)


def _trimmed_otherwise(con, present: set[str]) -> bool:
    """Does a province, source or note begin or end with a character that the reference
    reader strips and DuckDB's `trim` does not (a tab, a no-break space, ...)? Checked on the
    distinct values."""
    pattern = f"^ *{_STRIPPED}|{_STRIPPED} *$"
    for column in ("province", "source", "notes"):
        if column in present:
            values = f"SELECT DISTINCT {column} AS v FROM raw"
            query = f"SELECT bool_or(regexp_matches(v, $p)) FROM ({values})"
            if con.execute(query, {"p": pattern}).fetchall()[0][0]:
                return True
    return False


def _not_plain_ascii(text: str) -> str:
    """Non-ASCII (more bytes than characters) or any control character: such names are
    compared with Python's casefold and whitespace rules (which strip the separators
    chr(28)-chr(31) as well as tabs and line breaks), so they take the reference path."""
    return rf"strlen({text}) <> length({text}) OR regexp_matches({text}, '[\x00-\x1f\x7f]')"


def _survey_view(con, name: str, survey: str) -> None:
    """A view `name` of a workspace's observations of one survey, keyed by market number."""
    number = con.execute("SELECT survey_no FROM surveys WHERE name = ?", [survey]).fetchall()
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW {name} AS
            SELECT market_no AS market_key, year, stall_area_m2, open_area_m2
            FROM observed WHERE survey_no = {int(number[0][0])}"""
    )


# ----------------------------------------------------------------------------- figures


def _report(
    con,
    survey: SurveyInfo,
    other: SurveyInfo | None,
    options: ReportOptions,
    origin: str,
    present: set[str] | None,
) -> Report:
    """`report.build_report` on the view `obs`. Files (with the columns `present`) are matched
    into markets here, rule 3 of market identity included; a workspace's markets (`present`
    None) were matched when imported, and are described from all its surveys, as in the
    reference path."""
    measure = options.measure or survey.measure
    area = MEASURE_SQL[measure]
    con.execute(f"CREATE OR REPLACE TEMP VIEW measured AS SELECT *, {area} AS area FROM obs")
    years = [
        y
        for (y,) in con.execute(
            "SELECT DISTINCT year FROM measured WHERE area IS NOT NULL ORDER BY year"
        ).fetchall()
    ]
    try:
        start, end = period(years, options, survey, measure)
    except MarketdeltaError:
        if present is not None:  # a file's own problems come first: the reference reader's
            raise _Decline("the period is refused") from None
        raise
    if present is None:
        fetched, notices = _workspace_markets(con, start, end), []
    else:
        fetched, notices = _file_markets(con, present, start, end)
    con.execute(
        "CREATE OR REPLACE TEMP VIEW panel AS SELECT market_key, year, area "
        f"FROM measured WHERE area IS NOT NULL AND year <= {int(end)}"
    )
    # The annual series is computed in DuckDB, on a thread, while pandas takes the markets and
    # computes their figures; nothing else uses the connection meanwhile. On any exception
    # (Ctrl-C too) the window is interrupted rather than waited for.
    with ThreadPoolExecutor(max_workers=1) as pool:
        window = pool.submit(_annual, con, "panel", start, end)
        try:
            described = _described_frame(fetched)
            markets = metrics.classify(described.drop(columns="id"), options.min_change)
            figures = market_figures(markets, start, end, options.top)
            annual = window.result()
        except BaseException:
            con.interrupt()
            raise
    closed = markets["closed"].to_numpy()
    closed_ids = described["id"].to_numpy()[closed]  # by position: the keys are not hashed
    con.register("closed_ids", pd.DataFrame({"id": closed_ids, "number": range(len(closed_ids))}))
    closed_rows = con.execute(
        "SELECT c.number AS market_key, p.year, p.area FROM panel p "
        "JOIN closed_ids c ON p.market_key = c.id ORDER BY c.number, p.year"
    ).df()
    # Closures computed on the closed markets' numbers (faster than on text), then named.
    numbered = pd.DataFrame(
        {"closed": True}, index=pd.RangeIndex(len(closed_ids), name="market_key")
    )
    closures = metrics.closures(closed_rows, numbered, end).set_axis(described.index[closed])
    compare = None
    if other is not None:
        _survey_view(con, "other_obs", other.name)
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW other_panel AS SELECT market_key, year, "
            f"{MEASURE_SQL[other.measure]} AS area FROM other_obs WHERE area IS NOT NULL"
        )
        first, last = con.execute("SELECT min(year), max(year) FROM other_panel").fetchall()[0]
        compare = (other, _annual(con, "other_panel", first, last))
    return assemble(
        survey=survey,
        measure=measure,
        start=start,
        end=end,
        years=[y for y in years if start <= y <= end],
        markets=markets,
        figures=figures,
        annual=annual,
        closures=closures,
        compare=compare,
        options=options,
        notices=notices,
        origin=origin,
    )


BASELINE_END = ["baseline_year", "baseline_m2", "end_year", "end_m2"]
NAME_KEY = (
    "'nt:' || lower(replace(market, ' ', '')) || '|' || lower(replace(coalesce(town, ''), ' ', ''))"
)


def _describe(
    con, first: str, parameters: dict | None, extra: str = "", by: str = "market_key"
) -> None:
    """`identity.describe_markets` (the SQL `first`) and `metrics.baseline_and_end` in one
    pass over `measured` (with the measured `area`), into the table `described`: one row per
    group of the columns `by`; `observed` counts the rows, up to the end year, that the report
    is about. Without `parameters` (the period's start and end), the markets only (for an
    import)."""
    periods = ""
    if parameters is not None:
        mine = "area IS NOT NULL AND year <= $end"
        # The baseline (the latest observation at or before the start, else the first after
        # it) is the one with the largest `baseline` key: its year up to the start, minus its
        # distance after it (a negative key), from which its year follows. Two aggregates
        # instead of four (≈ 0.2 s on 10⁶ markets), one of them `max` (≈ 0.1 s less again).
        baseline = "CASE WHEN year <= $start THEN year ELSE $start - year END"
        key = f"max({baseline}) FILTER (WHERE {mine})"
        periods = f""",
              CASE WHEN {key} >= 0 THEN {key} ELSE $start - {key} END AS baseline_year,
              arg_max(area, {baseline}) FILTER (WHERE {mine}) AS baseline_m2,
              max(year) FILTER (WHERE {mine}) AS end_year,
              arg_max(area, year) FILTER (WHERE {mine}) AS end_m2,
              count(*) FILTER (WHERE {mine}) AS observed"""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE described AS
        SELECT market_key, {first + "," if first else ""} min(year) AS first_year {periods} {extra}
        FROM measured GROUP BY {by}""",
        parameters or {},
    )


def _first_values(order: str, present: set[str], trimmed: bool, grouped: set[str]) -> str:
    """SQL for each market's first recorded id, spelling, town, province and coordinates;
    the columns `grouped` are grouped by."""
    columns = []
    for c in ("market_id", "market", "town", "province", "lat", "lon"):
        text = c not in ("lat", "lon")
        value = f"trim({c})" if text and trimmed else c
        if c not in present:
            columns.append(f"NULL::{'VARCHAR' if text else 'DOUBLE'} AS {c}")
        elif c in grouped:
            columns.append(f"nullif({value}, '') AS {c}")
        else:
            keep = f"{value} <> ''" if text else f"{c} IS NOT NULL"
            columns.append(f"arg_min({value}, {order}) FILTER (WHERE {keep}) AS {c}")
    return ", ".join(columns)


def _workspace_markets(con, start: int, end: int) -> pa.Table:
    """A workspace's markets: as first recorded in any survey (its `markets` table, kept by
    every import), with their baseline and end in this one."""
    _describe(con, "", {"start": start, "end": end})
    return _fetch_described(
        con,
        """(SELECT d.*, m.market_id, m.name AS market, m.town, m.province, m.lat, m.lon,
                   m.market_key AS label
            FROM described d JOIN markets m ON m.market_no = d.market_key)""",
    )


def _file_markets(con, present: set[str], start: int, end: int) -> tuple[pa.Table, list[str]]:
    """The markets of the files, described (`_fetch_described`), with what rule 3 of market
    identity merged."""
    parameters = {"start": start, "end": end}
    _hashed_groups(con, present, parameters)
    notices, renames = _identities(con)
    if renames:
        con.register("renames", pd.DataFrame(list(renames.items()), columns=["old", "new"]))
        con.execute(
            """CREATE OR REPLACE TEMP TABLE merged AS
            SELECT o.* REPLACE (coalesce(r.new, o.market_key) AS market_key)
            FROM measured o LEFT JOIN renames r ON o.market_key = r.old"""
        )
        con.execute("CREATE OR REPLACE TEMP VIEW measured AS SELECT * FROM merged")
        first = _first_values("year", present, True, set())
        _describe(con, first, parameters, extra=f", {_repeated(con)}")
        _refuse_repeats(con)
    source = "described"  # with each group's label, unless merged markets were described again
    if renames:
        source = "(SELECT d.*, l.label FROM described d JOIN labels l USING (market_key))"
    return _fetch_described(con, source), notices


def _hashed_groups(con, present: set[str], parameters: dict | None) -> None:
    """Describe the rows of `measured` grouped by a hash of their names as written (one group
    per spelling), into `described`, and for a report each group's key (`label`, rule 2 of
    market identity: names compared without case and spaces) into `labels` too. Declines names
    that Python would compare differently, hash collisions and markets observed twice in a
    year. Without `parameters`, for an import: where each group was first met, and no period
    figures (and no `labels`: an import reads the keys from `described`).

    The rows are grouped by the names themselves, with their hash first (DuckDB groups by
    text as fast as by a number, and the hash keys every later step); two groups with one hash
    would be taken for one market there, and are declined."""
    placed = "min(year) FILTER (WHERE lat IS NOT NULL)" if "lat" in present else "NULL::INTEGER"
    met = ", min(file) AS first_file, min(row) AS first_row" if parameters is None else ""
    checks = f""", {NAME_KEY} AS label,
        market IS NULL OR trim(market) = '' OR {_not_plain_ascii("market")}
            OR {_not_plain_ascii("coalesce(town, '')")} AS unusual,
        {placed} AS placed_year {met}, {_repeated(con)}"""
    first = _first_values("year", present, True, {"market", "town"})
    by = "market_key, market, town"
    _describe(con, first, parameters, extra=checks, by=by)
    unusual, collided = con.execute(
        "SELECT bool_or(unusual), count(*) <> count(DISTINCT market_key) FROM described"
    ).fetchall()[0]
    if unusual or collided:
        raise _Decline("a name the reference reader compares its own way, or a shared hash")
    _refuse_repeats(con)
    if parameters is not None:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE labels AS SELECT market_key, label FROM described"
        )


def _repeated(con) -> str:
    """SQL: is the group observed twice in a year (`repeated`)? The reference path collapses
    identical rows and refuses different ones; the fast path leaves both to it. Each row sets
    its year's bit, in 64 bits when the years of `measured` span fewer (≈ 0.15 s less on 10⁶
    markets than 128 bits, which hold every possible year since `FIRST_YEAR`)."""
    first, last = con.execute("SELECT min(year), max(year) FROM measured").fetchall()[0]
    kind, base = "HUGEINT", FIRST_YEAR
    if first is not None and last - first < 64:
        kind, base = "UBIGINT", first
    return f"count(*) <> bit_count(bit_or(1::{kind} << (year - {int(base)})::{kind})) AS repeated"


def _refuse_repeats(con) -> None:
    if con.execute("SELECT bool_or(repeated) FROM described").fetchall()[0][0]:
        raise _Decline("a market is observed twice in one year")


def _fetch_described(con, source: str) -> pa.Table:
    """The described markets of `source` (a table, or a query in parentheses) with an observed
    area, in the order of their key (`label`), as Arrow: `_described_frame` makes them the
    frame `identity.describe_markets` gives."""
    return con.sql(
        f"""SELECT label AS market_key, market_key AS id, market_id, market, town, province,
                   lat, lon, {", ".join(BASELINE_END)}
            FROM {source} WHERE observed > 0 ORDER BY label"""
    ).to_arrow_table()


def _described_frame(described: pa.Table) -> pd.DataFrame:
    """The fetched markets indexed by their key (`label`); `id` is the key in the SQL tables.
    Text columns stay Arrow strings (the `string` dtype), which is faster than building a
    Python object per cell."""

    def text(kind):
        textual = pa.types.is_string(kind) or pa.types.is_large_string(kind)
        return pd.StringDtype("pyarrow") if textual or pa.types.is_string_view(kind) else None

    frame = described.to_pandas(types_mapper=text)
    return frame.astype({"baseline_year": "int64", "end_year": "int64"}).set_index("market_key")


def _identities(con) -> tuple[list[str], dict[int, int]]:
    """Rules 2 and 3 of market identity on the described groups: (notices, renames of the
    groups' hashes, each to the smallest hash of its market)."""
    shared = con.execute("SELECT count(*) - count(DISTINCT label) FROM labels").fetchall()[0][0]
    renames, groups = (
        {},
        """(SELECT label AS market_key, market_key AS id, market, town, lat,
                                     lon, first_year FROM described)""",
    )
    if shared:  # spellings of one market: one group each, merged here
        renames = dict(
            con.execute(
                """SELECT market_key, kept FROM (
                     SELECT market_key, min(market_key) OVER (PARTITION BY label) AS kept
                     FROM labels) WHERE market_key <> kept"""
            ).fetchall()
        )
        groups = """(SELECT l.label AS market_key, min(d.market_key) AS id,
                            arg_min(d.market, d.first_year) AS market,
                            arg_min(d.town, d.first_year) AS town,
                            arg_min(d.lat, d.placed_year) AS lat,
                            arg_min(d.lon, d.placed_year) AS lon,
                            min(d.first_year) AS first_year
                     FROM described d JOIN labels l USING (market_key) GROUP BY l.label)"""
    placed = con.execute("SELECT bool_or(lat IS NOT NULL) FROM described").fetchall()[0][0]
    candidates = con.execute(
        f"""SELECT market_key, market, town, lat, lon, NULL AS market_id, first_year,
                  name_key, numbers, town_key, id
           FROM ({_with_candidate_flag(groups, bool(placed))}) WHERE candidate
           ORDER BY market_key"""
    ).df()
    if candidates.empty:
        return [], renames
    merges, by_label = _merge(con, candidates)
    kept = candidates.set_index("market_key")["id"]
    moved = pd.DataFrame({"label": list(by_label), "new": kept[list(by_label.values())].array})
    con.register("moved", moved)
    renames |= dict(
        con.execute(
            "SELECT l.market_key, m.new FROM labels l JOIN moved m USING (label) "
            "WHERE l.market_key <> m.new"
        ).fetchall()
    )
    return [f"merged: {merge}" for merge in merges], renames


def _merge(con, candidates: pd.DataFrame):
    """`identity.fuzzy_merges` on the candidate groups, with their history from DuckDB."""
    groups = candidates.assign(numbers=candidates["numbers"].map(tuple)).set_index("market_key")
    con.register("candidate_labels", candidates[["market_key"]])
    history = con.execute(
        """WITH c AS (SELECT market_key, label FROM labels
                      WHERE label IN (SELECT market_key FROM candidate_labels))
           SELECT c.label AS market_key, 'survey' AS survey, o.year, f.name AS file, 0 AS line
           FROM measured o JOIN c USING (market_key) JOIN file_names f ON o.file = f.file"""
    ).df()
    return fuzzy_merges(with_history(groups, history), set(), True)


def _annual(con, table: str, start: int, end: int) -> pd.DataFrame:
    """`metrics.annual_series`, in SQL (`market_key` is a number: a hash or a market's)."""
    flows = con.execute(
        f"""WITH f AS (
             SELECT year, area - lag(area) OVER (PARTITION BY market_key ORDER BY year) AS d
             FROM {table} WHERE year <= $end)
           SELECT year, coalesce(sum(greatest(d, 0)), 0) AS gross_additions_m2,
                  coalesce(sum(greatest(-d, 0)), 0) AS gross_reductions_m2,
                  count(*) AS markets_observed
           FROM f GROUP BY year""",
        {"end": end},
    ).df()
    return _annual_frame(flows, start, end)


def _annual_frame(flows: pd.DataFrame, start: int, end: int) -> pd.DataFrame:
    """Each year's flows (year, gross additions and reductions, markets observed) after
    `start` to `end`, a year without any as 0."""
    flows = flows[flows["year"] > start]
    years = pd.Index(range(start + 1, end + 1), name="year")
    series = (
        flows.astype({"year": "int64"})
        .set_index("year")
        .reindex(years, fill_value=0)
        .astype({"gross_additions_m2": "float64", "gross_reductions_m2": "float64"})
        .astype({"markets_observed": "int64"})
    )
    return series.assign(
        net_m2=series["gross_additions_m2"] - series["gross_reductions_m2"]
    ).reset_index()[
        ["year", "gross_additions_m2", "gross_reductions_m2", "net_m2", "markets_observed"]
    ]
