"""The DuckDB fast path: large survey files and workspaces computed inside DuckDB.

The reference path (`survey` → `identity` → `metrics`, in pandas) is the definition; this module
computes the same panel-level ingredients (baseline and end per market, the annual series, the
closed markets' histories) with SQL, so that a million markets take seconds, and hands them to
`report.assemble`, which computes every other figure exactly as the reference path does.

For files, the fast path is only taken for plain long-layout files whose every cell passes the
same rules as `survey.py`. Anything else — a bad cell, a duplicate row, an unusual column, a
non-ASCII name — returns None, and the caller uses the reference reader, which explains the
problem precisely. Tests check that both paths give the same report.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from . import metrics
from .identity import CELL_DEGREES, fuzzy_merges, with_history
from .report import Report, ReportOptions, assemble, period
from .sources import SurveyInfo
from .survey import (
    DEFAULT_SURVEY,
    FIRST_YEAR,
    HEADER_SYNONYMS,
    MAX_AREA_M2,
    MAX_COLUMNS,
    NUMBER_PATTERN,
    SIGNED_PATTERN,
    ReadOptions,
    sniff_delimiter,
)

FAST_BYTES_ENV = "MARKETDELTA_FAST_BYTES"  # inputs at least this large take the fast path
FAST_BYTES_DEFAULT = 1024**2
FAST_COLUMNS = {
    "market", "town", "province", "lat", "lon", "year", "stall_area_m2", "open_area_m2",
    "source", "status", "notes",
}  # fmt: skip
MEASURE_SQL = {
    "stall": "stall_area_m2",
    "open": "open_area_m2",
    "total": "stall_area_m2 + coalesce(open_area_m2, 0)",
}


class _Decline(Exception):
    """The fast path cannot give the reference path's answer for these files."""


def wanted(sources: Sequence[str | Path]) -> bool:
    """Are the inputs large enough for the fast path to pay off?"""
    threshold = int(os.environ.get(FAST_BYTES_ENV, FAST_BYTES_DEFAULT))
    paths = [Path(s) for s in sources]
    if not paths or any(str(p) == "-" or not p.is_file() for p in paths):
        return False
    return sum(p.stat().st_size for p in paths) >= threshold


def report_from_files(
    sources: Sequence[str | Path], read: ReadOptions, options: ReportOptions
) -> Report | None:
    """The report, computed in DuckDB; None when the files need the reference reader."""
    if options.compare:
        return None
    from .store import quiet_connection

    con = quiet_connection()
    try:
        headers = [_plain_header(Path(s), read) for s in sources]
        if any(h is None for h in headers):
            return None
        if not _load_files(con, sources, headers, read):
            return None
        notices = _resolve_identity(con)
        survey = SurveyInfo(read.survey or DEFAULT_SURVEY)
        return _report(con, survey, None, options, notices, "files", describe_from="obs")
    except (duckdb.Error, _Decline):
        return None
    finally:
        con.close()


@dataclass
class FastImport:
    """What a fast import did, summarised like `store.ImportPlan.summary`."""

    files: int
    added: int
    merges: list[str]

    def summary(self, dry_run: bool = False) -> list[str]:
        return [f"{self.files} file(s): added {self.added} observations, replaced 0, "
                "0 already present", *self.merges]  # fmt: skip


def import_files(workspace, sources, read: ReadOptions, declarations) -> FastImport | None:
    """Import large plain files inside DuckDB, in one transaction; None when the reference
    import must decide (already imported, rows already in the workspace, possible fuzzy
    merges, anything the fast reader declines)."""
    from .store import file_sha256

    con = workspace.db
    headers = [_plain_header(Path(s), read) for s in sources]
    if any(h is None for h in headers):
        return None
    hashes = [file_sha256(s) for s in sources]
    if set(hashes) & workspace.imported_hashes() or len(set(hashes)) != len(hashes):
        return None
    if not all(_one_line_per_row(Path(s)) for s in sources):
        return None
    try:
        if not _keyed_rows(con, sources, headers, read, existing=not workspace.is_new):
            return None
    except duckdb.Error:
        return None
    survey = read.survey or DEFAULT_SURVEY
    added = workspace.apply_fast(survey, list(sources), hashes, declarations)
    return FastImport(len(sources), added, [])


def _keyed_rows(con, sources, headers, read: ReadOptions, existing: bool) -> bool:
    """Load the files into `keyed` (rows with their market keys and lines); False when the
    reference import must decide."""
    if not _load_files(con, sources, headers, read):
        return False
    con.execute(
        f"""CREATE TEMP TABLE keyed AS
        SELECT o.*, o.market_key AS label,
               {"coalesce(a.market_key, o.market_key)" if existing else "o.market_key"} AS key,
               o.rowid - min(o.rowid) OVER (PARTITION BY o.file) + 2 AS line
        FROM obs_all o {"LEFT JOIN aliases a ON a.label = o.market_key" if existing else ""}"""
    )
    twice = "SELECT count(*) FROM (SELECT 1 FROM keyed GROUP BY key, year HAVING count(*) > 1)"
    if con.execute(twice).fetchall()[0][0] or _fuzzy_partners(con, existing):
        return False
    survey = read.survey or DEFAULT_SURVEY
    clash = (
        "SELECT count(*) FROM keyed k JOIN observations o "
        "ON o.survey = ? AND o.market_key = k.key AND o.year = k.year"
    )
    return not (existing and con.execute(clash, [survey]).fetchall()[0][0])


def _one_line_per_row(path: Path) -> bool:
    """No blank lines and no line breaks inside quotes, so a row's line is its position."""
    lines, last = 0, b"\n"
    with path.open("rb") as handle:
        while block := handle.read(1 << 24):
            lines += block.count(b"\n")
            joined = last + block  # a blank line may straddle two blocks
            if b"\n\n" in joined or b"\n\r\n" in joined or b'"' in block:
                return False
            last = block[-1:]
    return lines > 0 and last == b"\n"


def _fuzzy_partners(con, existing: bool) -> bool:
    """Could rule 3 merge a new market with another (new or already in the workspace)?"""
    old, new_only = "", ""
    if existing:
        old = "UNION ALL SELECT market_key, name, town, lat, lon, false FROM markets"
        new_only = "WHERE key NOT IN (SELECT market_key FROM markets)"
    groups = f"""(SELECT key, arg_min(market, year) AS market,
                         arg_min(town, year) FILTER (WHERE town IS NOT NULL) AS town,
                         arg_min(lat, year) FILTER (WHERE lat IS NOT NULL) AS lat,
                         arg_min(lon, year) FILTER (WHERE lon IS NOT NULL) AS lon, true AS new
                  FROM keyed {new_only} GROUP BY key {old})"""
    query = f"SELECT count(*) FROM ({_with_candidate_flag(groups)}) WHERE new AND candidate"
    return bool(con.execute(query).fetchall()[0][0])


def _with_candidate_flag(source: str) -> str:
    """SQL for the groups of `source` (market, town, lat, lon, ...) with their `name_key`,
    `town_key`, `numbers` and `candidate`: could rule 3 pair the group with another one (same
    town, or a neighbouring map cell, and the same numbers in the name)? Over-inclusive by
    design; `identity.fuzzy_merges` decides."""
    by_cell = ", ".join(
        f"count(*) OVER (PARTITION BY numbers, (fy + {dy}) // 2, (fx + {dx}) // 2)"
        for dy in (0, 1)
        for dx in (0, 1)
    )
    return rf"""WITH named AS (
          SELECT *,
            regexp_replace(lower(replace(market, ' ', '')), '[^\w#]', '', 'g') AS name_key,
            lower(replace(coalesce(town, ''), ' ', '')) AS town_key,
            floor(lat / {CELL_DEGREES})::BIGINT AS fy, floor(lon / {CELL_DEGREES})::BIGINT AS fx
          FROM {source}),
        numbered AS (SELECT *, regexp_extract_all(name_key, '\d+') AS numbers FROM named),
        counted AS (
          SELECT *, count(*) OVER (PARTITION BY town_key, numbers) AS by_town,
                 greatest({by_cell}) AS by_cell
          FROM numbered)
        SELECT * EXCLUDE (fy, fx, by_town, by_cell),
               (town_key <> '' AND by_town > 1) OR (fy IS NOT NULL AND by_cell > 1) AS candidate
        FROM counted"""


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
    _observations_view(con, "obs", survey.name, "observations")
    return _report(con, survey, other, options, [], origin, describe_from="observations")


# ------------------------------------------------------------------------------ reading


def _plain_header(path: Path, read: ReadOptions) -> tuple[list[str], str] | None:
    """The normalised header and delimiter of a plain long-layout file, else None."""
    with path.open("rb") as handle:
        first = handle.readline(1 << 20)
    try:
        line = first.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError:
        return None
    delimiter = sniff_delimiter(line)
    names = [HEADER_SYNONYMS.get(h, h) for h in (h.strip().lower() for h in line.split(delimiter))]
    names = ["_".join(n.split()) for n in names]
    if (
        '"' in line
        or len(names) > MAX_COLUMNS
        or len(set(names)) != len(names)
        or not {"market", "stall_area_m2"} <= set(names)
        or ("year" not in names and read.year is None)
        or any(n in ("market_id", "coordinates", "survey", "imagery_date") for n in names)
        or any(not n for n in names)
    ):
        return None
    return names, delimiter


def _load_files(con, sources, headers, read: ReadOptions) -> bool:
    """Read every file into `obs_all` in one pass, typed, with each row's exact label; False if
    any cell breaks a rule of `survey.py` (the reference reader will then explain it)."""
    parts = []
    for index, (source, (names, delimiter)) in enumerate(zip(sources, headers, strict=True)):
        relation = con.read_csv(
            str(source),
            header=True,
            all_varchar=True,
            delimiter=delimiter,
            quotechar='"',
            escapechar='"',
            names=names,
            filename=True,
        )
        view = f"file_{index}"
        con.register(view, relation)
        kept = [n for n in names if n in FAST_COLUMNS]
        missing = sorted(FAST_COLUMNS - set(kept))
        select = ", ".join(
            [f"nullif(trim(\"{n}\"), '') AS {n}" for n in kept]
            + [f"NULL::VARCHAR AS {n}" for n in missing]
        )
        parts.append(f"SELECT {select}, filename AS file FROM {view}")
    con.execute(f"CREATE TEMP VIEW raw AS {' UNION ALL '.join(parts)}")
    year = f"coalesce(year, '{read.year or ''}')"
    stall = "try_cast(replace(stall_area_m2, ',', '') AS DOUBLE)"
    con.execute(
        f"""CREATE TEMP TABLE obs_all AS
        SELECT 'nt:' || lower(replace(market, ' ', '')) || '|'
                     || lower(replace(coalesce(town, ''), ' ', '')) AS market_key,
               market, town, province,
               try_cast(lat AS DOUBLE) AS lat, try_cast(lon AS DOUBLE) AS lon,
               NULL::VARCHAR AS market_id, try_cast({year} AS INTEGER) AS year,
               CASE WHEN lower(status) = 'closed' THEN coalesce({stall}, 0) ELSE {stall} END
                   AS stall_area_m2,
               try_cast(replace(open_area_m2, ',', '') AS DOUBLE) AS open_area_m2,
               CASE WHEN lower(status) IN ('open', 'closed') THEN lower(status) END AS status,
               source, notes, file, {_broken_rule(read)} AS broken
        FROM raw"""
    )
    return not con.execute("SELECT bool_or(broken) FROM obs_all").fetchone()[0]


def _not_plain_ascii(text: str) -> str:
    """Non-ASCII (more bytes than characters) or a control character: such names are compared
    with Python's casefold and whitespace rules, so they take the reference path."""
    controls = " OR ".join(f"contains({text}, chr({c}))" for c in (9, 10, 11, 12, 13))
    return f"strlen({text}) <> length({text}) OR {controls}"


def _broken_rule(read: ReadOptions) -> str:
    """True for a row that `survey.py` would refuse (cells already trimmed, blank as NULL)."""
    year = f"coalesce(year, '{read.year or ''}')"
    rules = [
        "market IS NULL",
        _not_plain_ascii("market"),
        _not_plain_ascii("coalesce(town, '')"),
        f"length({year}) <> 4 OR coalesce(try_cast({year} AS INTEGER), 0) "
        f"NOT BETWEEN {FIRST_YEAR} AND {date.today().year}",
        "lower(coalesce(status, '')) NOT IN ('', 'open', 'closed')",
        "lower(coalesce(status, '')) = 'closed' "
        "AND coalesce(try_cast(replace(stall_area_m2, ',', '') AS DOUBLE), 0) > 0",
        "(lat IS NULL) <> (lon IS NULL)",
    ]
    for column in ("stall_area_m2", "open_area_m2"):
        rules.append(
            f"{column} IS NOT NULL AND (NOT regexp_full_match({column}, '{NUMBER_PATTERN}') "
            f"OR replace({column}, ',', '')::DOUBLE > {MAX_AREA_M2})"
        )
    for column, limit in (("lat", 90), ("lon", 180)):
        rules.append(
            f"{column} IS NOT NULL AND (NOT regexp_full_match({column}, '{SIGNED_PATTERN}') "
            f"OR abs({column}::DOUBLE) > {limit})"
        )
    return "(" + " OR ".join(f"({r})" for r in rules) + ")"


def _resolve_identity(con) -> list[str]:
    """Rule 3 of market identity, on the few groups that could merge; rules 1-2 are the keys."""
    con.execute(
        """CREATE TEMP TABLE groups AS
        SELECT market_key,
               arg_min(market, year) AS market,
               arg_min(town, year) FILTER (WHERE town IS NOT NULL) AS town,
               arg_min(lat, year) FILTER (WHERE lat IS NOT NULL) AS lat,
               arg_min(lon, year) FILTER (WHERE lon IS NOT NULL) AS lon,
               min(year) AS first_year
        FROM obs_all GROUP BY market_key"""
    )
    candidates = con.execute(
        f"""SELECT market_key, market, town, lat, lon, NULL AS market_id, first_year,
                  name_key, numbers, town_key
           FROM ({_with_candidate_flag("groups")}) WHERE candidate ORDER BY market_key"""
    ).df()
    merges, renames = ([], {}) if candidates.empty else _merge(con, candidates)
    if renames:
        con.register("renames", pd.DataFrame({"old": list(renames), "new": list(renames.values())}))
        con.execute(
            """CREATE TEMP TABLE obs_keyed AS
            SELECT o.* REPLACE (coalesce(r.new, o.market_key) AS market_key)
            FROM obs_all o LEFT JOIN renames r ON o.market_key = r.old"""
        )
    else:
        con.execute("CREATE TEMP VIEW obs_keyed AS SELECT * FROM obs_all")
    _observations_view(con, "obs", None, "obs_keyed")
    return [f"merged: {merge}" for merge in merges]


def _merge(con, candidates: pd.DataFrame):
    """`identity.fuzzy_merges` on the candidate groups, with their history from DuckDB."""
    groups = candidates.assign(numbers=candidates["numbers"].map(tuple)).set_index("market_key")
    con.register("candidate_keys", candidates[["market_key"]])
    history = con.execute(
        "SELECT market_key, 'survey' AS survey, year, file, 0 AS line FROM obs_all "
        "WHERE market_key IN (SELECT market_key FROM candidate_keys)"
    ).df()
    return fuzzy_merges(with_history(groups, history), set(), True)


def _observations_view(con, name: str, survey: str | None, table: str) -> None:
    """A view `name` of `table`, for one survey (filtered with an expression, not SQL text)."""
    relation = con.table(table)
    if survey is not None:
        relation = relation.filter(
            duckdb.ColumnExpression("survey") == duckdb.ConstantExpression(survey)
        )
    con.register(name, relation)


# ----------------------------------------------------------------------------- figures


def _report(
    con,
    survey: SurveyInfo,
    other: SurveyInfo | None,
    options: ReportOptions,
    notices: list[str],
    origin: str,
    describe_from: str,
) -> Report:
    """`report.build_report` on the view `obs`; markets are described from `describe_from`
    (all of a workspace's observations, as the reference path does)."""
    measure = options.measure or survey.measure
    area = MEASURE_SQL[measure]
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW panel AS SELECT market_key, year, {area} AS area "
        "FROM obs WHERE area IS NOT NULL"
    )
    years = [y for (y,) in con.execute("SELECT DISTINCT year FROM panel ORDER BY year").fetchall()]
    start, end = period(years, options, survey, measure)
    # A market has one row a year in one survey; ties in year only arise across surveys.
    workspace = describe_from == "observations"
    several = (
        workspace
        and con.execute("SELECT count(DISTINCT survey) > 1 FROM observations").fetchall()[0][0]
    )
    order = "(year, file)" if several else "year"
    described = _describe_markets(
        con, describe_from, order, area, survey.name if workspace else None, start, end
    )
    changes = metrics.classify(described[BASELINE_END], options.min_change)
    markets = described.drop(columns=BASELINE_END).join(changes, how="inner")
    closed = changes.index[changes["closed"]]
    con.register("closed_keys", pd.DataFrame({"market_key": closed}))
    closed_rows = con.execute(
        "SELECT market_key, year, area FROM panel WHERE market_key IN "
        "(SELECT market_key FROM closed_keys) ORDER BY market_key, year"
    ).df()
    compare = None
    if other is not None:
        _observations_view(con, "other_obs", other.name, "observations")
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW other_panel AS SELECT market_key, year, "
            f"{MEASURE_SQL[other.measure]} AS area FROM other_obs WHERE area IS NOT NULL"
        )
        first, last = con.execute("SELECT min(year), max(year) FROM other_panel").fetchone()
        compare = (other, _annual(con, "other_panel", first, last))
    return assemble(
        survey=survey,
        measure=measure,
        start=start,
        end=end,
        years=[y for y in years if start <= y <= end],
        markets=markets,
        annual=_annual(con, "panel", start, end),
        closures=metrics.closures(closed_rows, markets, end),
        compare=compare,
        options=options,
        notices=notices,
        origin=origin,
    )


BASELINE_END = ["baseline_year", "baseline_m2", "end_year", "end_m2"]


def _describe_markets(
    con, table: str, order: str, area: str, survey: str | None, start: int, end: int
) -> pd.DataFrame:
    """`identity.describe_markets` and `metrics.baseline_and_end` in one pass over `table`.

    A workspace's markets are described from all its surveys, as in the reference path; the
    baseline and end come from the rows of `survey` with an observed `area`, up to `end`.
    """
    first = ", ".join(
        f"arg_min({c}, {order}) FILTER (WHERE {c} IS NOT NULL) AS {c}"
        for c in ("market_id", "market", "town", "province", "lat", "lon")
    )
    mine = f"({area}) IS NOT NULL AND year <= $end" + (
        " AND survey = $survey" if survey is not None else ""
    )
    parameters = {"start": start, "end": end} | ({"survey": survey} if survey else {})
    frame = con.execute(
        f"""SELECT market_key, {first},
              coalesce(max(year) FILTER (WHERE {mine} AND year <= $start),
                       min(year) FILTER (WHERE {mine} AND year > $start)) AS baseline_year,
              coalesce(arg_max({area}, year) FILTER (WHERE {mine} AND year <= $start),
                       arg_min({area}, year) FILTER (WHERE {mine} AND year > $start))
                  AS baseline_m2,
              max(year) FILTER (WHERE {mine}) AS end_year,
              arg_max({area}, year) FILTER (WHERE {mine}) AS end_m2
            FROM {table} GROUP BY market_key
            HAVING count(*) FILTER (WHERE {mine}) > 0 ORDER BY market_key""",
        parameters,
    ).df()
    return frame.astype(
        {
            "market_id": "string",
            "market": "string",
            "town": "string",
            "province": "string",
            "baseline_year": "int64",
            "end_year": "int64",
        }
    ).set_index("market_key")


def _annual(con, table: str, start: int, end: int) -> pd.DataFrame:
    """`metrics.annual_series`, in SQL."""
    flows = con.execute(
        f"""WITH f AS (
             SELECT year, area - lag(area) OVER w AS d, year = lag(year) OVER w AS twice
             FROM {table} WHERE year <= $end
             WINDOW w AS (PARTITION BY market_key ORDER BY year))
           SELECT year, coalesce(sum(greatest(d, 0)), 0) AS gross_additions_m2,
                  coalesce(sum(greatest(-d, 0)), 0) AS gross_reductions_m2,
                  count(*) AS markets_observed, count(*) FILTER (WHERE twice) AS twice
           FROM f GROUP BY year""",
        {"end": end},
    ).df()
    if flows["twice"].sum():
        raise _Decline("a market is observed twice in one year")
    flows = flows[flows["year"] > start].drop(columns="twice")
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
