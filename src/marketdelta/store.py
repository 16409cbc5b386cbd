"""The workspace: one DuckDB file holding every survey file imported, with provenance.

Import is planned first and written second. `import_surveys` is the whole import: large plain
files go to the fast import (`fastpath.import_files`); otherwise `read_import_files` reads and
validates every file, `Workspace.plan` works out what would be added, replaced and merged,
without writing, and `Workspace.apply` writes the plan in one transaction. Any error before the
commit leaves the database as it was (DuckDB's write-ahead log makes a `kill -9` at any moment
safe too).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pandas as pd

from .__about__ import __version__
from .engine import connect_workspace, first_line, quiet_connection
from .errors import InputError, Problem, WorkspaceError
from .identity import Merge, exact_labels, resolve_markets
from .sources import Panel, SurveyInfo, refuse_conflicts
from .survey import OBSERVATION_COLUMNS, ReadOptions, read_survey, typed_observations

if TYPE_CHECKING:
    from .fastpath import FastImport
    from .fastread import EarlyImport

SCHEMA_VERSION = 3
OLDEST_READABLE = 1  # older workspaces are read through temporary tables (`_read_as_current`)

# Observations are stored compactly, in `observed`: numbers for the survey, the market and the
# way the row wrote the market's name (`spellings`), and the row's other cells in `details` for
# the few rows that have any. The view `observations` spells every row out as it was read.
# Writing text on each of millions of rows was most of a large import's time.
OBSERVATIONS_VIEW = """CREATE VIEW observations AS
    SELECT s.name AS survey, m.market_key, o.year, w.market_id, w.market, w.town, d.province,
           d.lat, d.lon, o.stall_area_m2, o.open_area_m2, d.imagery_date, d.source, d.status,
           d.notes, i.file, o.line, o.import_id
    FROM observed o JOIN surveys s USING (survey_no) JOIN markets m USING (market_no)
         JOIN spellings w USING (spelling_no) JOIN imports i USING (import_id)
         LEFT JOIN details d USING (survey_no, market_no, year)"""
# The large tables name each column's compression. Otherwise DuckDB tries every method on
# every column as it writes, and keeps the smallest: the trials cost a million-market import
# about 1 s. ZSTD for names writes twice as fast as DuckDB's choice (DICT_FSST), in half the
# blocks. Then bit-packing for whole numbers, ALP for areas, and runs for each row's survey and
# import, which stay the same over thousands of rows. Reading back is as fast as before.
TEXT = "VARCHAR USING COMPRESSION zstd"
WHOLE = "INTEGER USING COMPRESSION bitpacking"
AREA = "DOUBLE USING COMPRESSION alp"
RUNS = "INTEGER USING COMPRESSION rle"
SCHEMA = [
    "CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)",
    """CREATE TABLE surveys (
        name VARCHAR PRIMARY KEY,
        title VARCHAR,
        measure VARCHAR NOT NULL DEFAULT 'stall',   -- stall | open | total
        known_markets INTEGER,                       -- the universe coverage is measured against
        compare VARCHAR,                             -- survey compared with by default
        survey_no INTEGER NOT NULL UNIQUE
    )""",
    """CREATE TABLE imports (
        import_id INTEGER PRIMARY KEY,
        file VARCHAR NOT NULL,                       -- as given on the command line
        sha256 VARCHAR NOT NULL UNIQUE,
        rows INTEGER NOT NULL,
        added INTEGER NOT NULL,
        replaced INTEGER NOT NULL,
        survey VARCHAR,
        imported_at TIMESTAMP NOT NULL,
        tool_version VARCHAR NOT NULL
    )""",
    f"""CREATE TABLE markets (                       -- each market as first recorded
        market_no INTEGER NOT NULL,                  -- in the order first seen; never renumbered
        market_key {TEXT} NOT NULL,                 -- id:<market_id> or nt:<name>|<town>
        market_id VARCHAR, name {TEXT} NOT NULL, town {TEXT}, province VARCHAR,
        lat DOUBLE, lon DOUBLE
    )""",
    f"""CREATE TABLE aliases (
        label {TEXT} NOT NULL,                      -- every exact spelling label seen
        market_key {TEXT} NOT NULL,
        spelling {TEXT} NOT NULL,
        import_id INTEGER NOT NULL                   -- the import that first brought it
    )""",
    f"""CREATE TABLE spellings (                     -- each id, name and town as a row wrote them
        spelling_no INTEGER NOT NULL,
        market_id VARCHAR, market {TEXT} NOT NULL, town {TEXT}
    )""",
    f"""CREATE TABLE observed (                      -- one row per (survey_no, market_no, year)
        survey_no {RUNS} NOT NULL, market_no {WHOLE} NOT NULL, year {WHOLE} NOT NULL,
        spelling_no {WHOLE} NOT NULL, stall_area_m2 {AREA}, open_area_m2 {AREA},
        import_id {RUNS} NOT NULL, line {WHOLE} NOT NULL
    )""",
    """CREATE TABLE details (                        -- a row's other cells, if it has any
        survey_no INTEGER NOT NULL, market_no INTEGER NOT NULL, year INTEGER NOT NULL,
        province VARCHAR, lat DOUBLE, lon DOUBLE, imagery_date VARCHAR, source VARCHAR,
        status VARCHAR, notes VARCHAR
    )""",
    OBSERVATIONS_VIEW,
    """CREATE TABLE replacements (                   -- what each --replace import replaced
        import_id INTEGER NOT NULL, survey VARCHAR NOT NULL, market_key VARCHAR NOT NULL,
        year INTEGER NOT NULL, old_stall_area_m2 DOUBLE, old_open_area_m2 DOUBLE,
        new_stall_area_m2 DOUBLE, new_open_area_m2 DOUBLE, old_import_id INTEGER NOT NULL
    )""",
]
DETAIL_COLUMNS = ["province", "lat", "lon", "imagery_date", "source", "status", "notes"]
SPELLING_COLUMNS = ["market_id", "market", "town"]
# The surveys and markets of a schema-1 or -2 workspace, numbered (by name and by key) for schema 3.
NUMBERED_SURVEYS = """SELECT name, title, measure, known_markets, compare,
    row_number() OVER (ORDER BY name) AS survey_no FROM {surveys}"""
NUMBERED_MARKETS = """SELECT row_number() OVER (ORDER BY market_key) AS market_no, market_key,
    market_id, name, town, province, lat, lon FROM {markets}"""


def _ddl(table: str) -> str:
    return next(statement for statement in SCHEMA if f"CREATE TABLE {table} (" in statement)


def _markets_of_groups(one_group_each: bool) -> str:
    """SQL describing the markets of the fast import's spelling groups (`keys`), for
    `Workspace._number_markets`: the groups themselves when each market has one (most
    imports), else each market's first spelling, town, province and coordinates."""
    if one_group_each:
        return """SELECT key AS market_key, NULL::VARCHAR AS market_id, spelling AS market,
                         town, province, lat, lon, first_row AS first_seen FROM keys"""
    first = ", ".join(
        f"arg_min({c}, first_year) FILTER (WHERE {c} IS NOT NULL) AS {c}"
        for c in ("town", "province", "lat", "lon")
    )
    return f"""SELECT key AS market_key, NULL::VARCHAR AS market_id,
                      arg_min(spelling, first_year) AS market, {first},
                      min(first_row) AS first_seen
               FROM keys GROUP BY key"""


def _line_of_row(files: pd.DataFrame) -> str:
    """SQL: the line of the fast import's row `o` in its file: its position (`row`, counted
    over all `files`), less its file's `first_row`, after the header. A `CASE` on the file's
    number, not a join to the files (0.1-0.2 s less on 15 M rows, measured in one process)."""
    first = " ".join(f"WHEN {int(f.file)} THEN {int(f.first_row)}" for f in files.itertuples())
    return f"(o.row - CASE o.file {first} END + 2)::INTEGER"


def _numbered_rows(table: str) -> str:
    """SQL numbering the rows (`id`) of `table` 1, 2, ... in the order they were first seen
    (`number`). Sorting the row ids alone, then joining, is twice as fast as sorting the
    rows with their text (≈ 1 s against 2 s for a million markets)."""
    return f"SELECT rowid AS id, row_number() OVER (ORDER BY first_seen) AS number FROM {table}"


def _with_numbers(rows: str) -> str:
    """SQL: the rows `rows` (`r`, by survey name and market key) with their survey (`s`) and
    market (`m`), whose numbers `observed` stores."""
    return f"{rows} r JOIN surveys s ON s.name = r.survey JOIN markets m USING (market_key)"


def _same_spelling(a: str, b: str) -> str:
    """SQL: do the rows `a` and `b` write the id, name and town the same way (blanks too)?"""
    return " AND ".join(f"{a}.{c} IS NOT DISTINCT FROM {b}.{c}" for c in SPELLING_COLUMNS)


def _first_recorded(rows: str, where: str = "true") -> str:
    """SQL: each market's first recorded id, name, town, province and coordinates in the
    observations `rows` (first by year, file and line), one row a `market_key`, and where it
    was `first_seen` (see `FIRST_SEEN`)."""
    first = ", ".join(
        f"arg_min({c}, (year, file, line)) FILTER (WHERE {c} IS NOT NULL) AS {c}"
        for c in ("market_id", "market", "town", "province", "lat", "lon")
    )
    return f"""SELECT market_key, {first}, min({FIRST_SEEN}) AS first_seen
               FROM {rows} WHERE {where} GROUP BY market_key"""


# New markets and spellings are numbered in the order an import first meets them: by import,
# then line (the fast import's row positions run in the same order).
FIRST_SEEN = "import_id::BIGINT * 4294967296 + line"


# Migrations from version N to N + 1, applied in order when an older workspace is opened
# for writing.
MIGRATIONS: dict[int, list[str]] = {
    # 1 -> 2 dropped the primary key of `observations`, which 2 -> 3 replaces anyway.
    1: [],
    # 2 -> 3: the compact `observed` (see OBSERVATIONS_VIEW).
    2: [
        "ALTER TABLE surveys RENAME TO surveys_v2",
        _ddl("surveys"),
        f"INSERT INTO surveys {NUMBERED_SURVEYS.format(surveys='surveys_v2')}",
        "DROP TABLE surveys_v2",
        "ALTER TABLE markets RENAME TO markets_v2",
        _ddl("markets"),
        f"INSERT INTO markets {NUMBERED_MARKETS.format(markets='markets_v2')}",
        "DROP TABLE markets_v2",
        "ALTER TABLE observations RENAME TO observations_v2",
        _ddl("spellings"),
        """INSERT INTO spellings SELECT row_number() OVER (ORDER BY market, town, market_id),
               market_id, market, town
           FROM (SELECT DISTINCT market_id, market, town FROM observations_v2)""",
        _ddl("observed"),
        f"""INSERT INTO observed
           SELECT s.survey_no, m.market_no, o.year, w.spelling_no, o.stall_area_m2,
                  o.open_area_m2, o.import_id, o.line
           FROM observations_v2 o JOIN surveys s ON s.name = o.survey
                JOIN markets m USING (market_key)
                JOIN spellings w ON {_same_spelling("w", "o")}""",
        _ddl("details"),
        f"""INSERT INTO details
            SELECT s.survey_no, m.market_no, o.year, {", ".join(f"o.{c}" for c in DETAIL_COLUMNS)}
            FROM observations_v2 o JOIN surveys s ON s.name = o.survey
                 JOIN markets m USING (market_key)
            WHERE {" OR ".join(f"o.{c} IS NOT NULL" for c in DETAIL_COLUMNS)}""",
        "DROP TABLE observations_v2",
        OBSERVATIONS_VIEW,
    ],
}

AREA_COLUMNS = ["stall_area_m2", "open_area_m2"]
KEY_COLUMNS = ["survey", "market_key", "year"]


@dataclass(frozen=True)
class SurveyDeclaration:
    """What `import --survey NAME --measure ... --known-markets ... --compare ...` declares;
    `None` keeps what the workspace already says."""

    name: str
    title: str | None = None
    measure: str | None = None
    known_markets: int | None = None
    compare: str | None = None


def declarations_of(
    survey: str | None,
    title: str | None = None,
    measure: str | None = None,
    known_markets: int | None = None,
    compare: str | None = None,
) -> list[SurveyDeclaration]:
    """The `survey`'s facts an import declares: none if no fact is given. Facts without a
    survey raise `ValueError`."""
    facts = (title, measure, known_markets, compare)
    if all(fact is None for fact in facts):
        return []
    if survey is None:
        raise ValueError("a survey's title, measure, known markets or comparison need a survey")
    return [SurveyDeclaration(survey, *facts)]


@dataclass
class FileToImport:
    path: str
    sha256: str
    observations: pd.DataFrame
    already_imported: bool = False


@dataclass
class ImportPlan:
    """Everything an import would do, computed without writing."""

    files: list[FileToImport]
    added: pd.DataFrame
    replaced: pd.DataFrame
    unchanged: int
    merges: list[Merge]
    labels: pd.DataFrame
    surveys: list[SurveyDeclaration] = field(default_factory=list)

    @property
    def new_files(self) -> list[FileToImport]:
        return [f for f in self.files if not f.already_imported]

    def summary(self, dry_run: bool = False) -> list[str]:
        verb = "would add" if dry_run else "added"
        lines = [
            f"{f.path}: already imported (sha256 {f.sha256[:12]}…); skipped"
            for f in self.files
            if f.already_imported
        ]
        lines.append(
            f"{len(self.new_files)} file(s): {verb} {len(self.added)} observations, "
            f"{'would replace' if dry_run else 'replaced'} {len(self.replaced)}, "
            f"{self.unchanged} already present"
        )
        lines += [f"merge: {m}" for m in self.merges]
        return lines


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_import_files(paths: Sequence[str | Path], options: ReadOptions) -> list[FileToImport]:
    """Validate every file first; an `InputError` lists all problems in all files."""
    files, problems = [], []
    for path in paths:
        try:
            observations = read_survey(path, options)
        except InputError as error:
            problems.extend(error.problems)
            continue
        files.append(FileToImport(str(path), file_sha256(path), observations))
    if problems:
        raise InputError(problems)
    return files


def import_surveys(
    files: Sequence[str | Path],
    path: Path,
    read: ReadOptions,
    *,
    replace: bool = False,
    strict: bool = False,
    dry_run: bool = False,
    declarations: Sequence[SurveyDeclaration] = (),
    early: EarlyImport | None = None,
) -> ImportPlan | FastImport:
    """Import survey files into the workspace at `path` (made if new); what it did, or with
    `dry_run` what it would do, as `summary()` lines.

    `early` is the fast import's start (`fastread.importing_early`, which the caller enters
    before importing pandas: it is taken for large plain files, unless the import replaces,
    is strict or is a dry run, and removes a new workspace that it leaves unfinished). Its
    files are imported inside DuckDB (`fastpath.import_into`); if that declines, a workspace
    it made is removed and the reference import below decides. That one plans against the
    workspace read-only, then writes under the write lock, planning again only if another
    import came in between; if it fails or is stopped, a workspace it was creating is
    removed."""
    from .fastread import remove_workspace

    if early is not None:
        from . import fastpath

        fast = fastpath.import_into(path, files, read, declarations, early)
        if fast is not None:
            return fast
        if early.fresh:  # declined: leave no trace of the attempt
            remove_workspace(path)
    to_import = read_import_files(files, read)
    with Workspace.empty(path) if not path.exists() else Workspace.open(path) as current:
        plan = current.plan(to_import, replace=replace, strict=strict, surveys=declarations)
        planned_on = current.import_count()
    if not dry_run and (plan.new_files or declarations):
        workspace = Workspace.open(path, write=True)  # if another import holds it: left alone
        creating = workspace.is_new  # no schema yet: nothing stored, and the lock is ours
        try:
            with workspace:
                if workspace.import_count() != planned_on:  # another import came in between
                    plan = workspace.plan(to_import, replace, strict, declarations)
                workspace.apply(plan)
        except BaseException:  # Ctrl-C too: a workspace this import was creating is removed
            if creating:
                remove_workspace(path)
            raise
    return plan


class Workspace:
    """A marketdelta workspace: open it with `Workspace.open(path, write=...)`."""

    def __init__(self, path: Path, connection: duckdb.DuckDBPyConnection, write: bool):
        self.path = path
        self.db = connection
        self.write = write
        self.version = SCHEMA_VERSION

    # ------------------------------------------------------------------ opening

    @classmethod
    def empty(cls, path: str | Path) -> Workspace:
        """An empty, in-memory stand-in for a workspace that does not exist yet (for planning)."""
        return cls(Path(path), quiet_connection(":memory:"), write=False)

    @classmethod
    def open(
        cls,
        path: str | Path,
        write: bool = False,
        connection: duckdb.DuckDBPyConnection | None = None,
    ) -> Workspace:
        """Open the workspace at `path`, or, given its `connection` (`engine.connect_workspace`,
        as `fastread.importing_early` opens it), the workspace on that connection."""
        path = Path(path)
        if not write and not path.exists():
            raise WorkspaceError(f"{path}: no workspace here; create one with `marketdelta import`")
        if write and not path.parent.exists():
            raise WorkspaceError(f"{path.parent}: no such directory for the workspace")
        connection = connection or connect_workspace(path, read_only=not write)
        workspace = cls(path, connection, write)
        try:
            workspace._check_schema()
        except BaseException:
            connection.close()
            raise
        return workspace

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    def _tables(self) -> set[str]:
        return {
            row[0]
            for row in self.db.execute(
                "SELECT table_name FROM duckdb_tables() WHERE NOT temporary"
            ).fetchall()
        }

    def _check_schema(self) -> None:
        tables = self._tables()
        if not tables:
            if self.write:
                return  # a new workspace: the schema is created with the first import
            raise WorkspaceError(f"{self.path}: the workspace is empty; import files into it first")
        if "meta" not in tables:
            raise WorkspaceError(
                f"{self.path}: this DuckDB file is not a marketdelta workspace; "
                "choose another path with --db"
            )
        version = int(
            self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()[0][0]
        )
        if version > SCHEMA_VERSION:
            raise WorkspaceError(
                f"{self.path}: the workspace was written by a newer marketdelta "
                f"(schema {version}; this version reads up to {SCHEMA_VERSION}); upgrade "
                "marketdelta with `pip install -U marketdelta`"
            )
        self.version = version
        if version < SCHEMA_VERSION:
            if not self.write and version < OLDEST_READABLE:
                raise WorkspaceError(
                    f"{self.path}: the workspace uses schema {version}; run any "
                    "`marketdelta import` to upgrade it"
                )
            if self.write:
                self._migrate(version)

    def _migrate(self, version: int) -> None:
        with self.writing():
            for step in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[step]:
                    self.db.execute(statement)
            self._set_version()
        self.version = SCHEMA_VERSION

    def _read_as_current(self) -> None:
        """Let an older workspace, opened read-only, be read as schema 3 is: temporary
        `surveys`, `markets` and `observed`, numbered as the migration numbers them, stand in
        front of its own tables."""
        if self.version >= 3:
            return
        main = f'"{self.db.execute("SELECT current_database()").fetchall()[0][0]}".main'
        self.db.execute(
            f"CREATE TEMP TABLE surveys AS {NUMBERED_SURVEYS.format(surveys=f'{main}.surveys')}"
        )
        self.db.execute(
            f"CREATE TEMP TABLE markets AS {NUMBERED_MARKETS.format(markets=f'{main}.markets')}"
        )
        self.db.execute(
            f"""CREATE TEMP VIEW observed AS
                SELECT s.survey_no, m.market_no, o.year, o.stall_area_m2, o.open_area_m2
                FROM {main}.observations o JOIN surveys s ON s.name = o.survey
                     JOIN markets m USING (market_key)"""
        )
        self.version = SCHEMA_VERSION

    def _set_version(self) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)]
        )

    def transaction(self):
        return _Transaction(self.db)

    @property
    def is_new(self) -> bool:
        return "meta" not in self._tables()

    # ------------------------------------------------------------------ reading

    def observations(self) -> pd.DataFrame:
        if self.is_new:
            return typed_observations(pd.DataFrame(columns=OBSERVATION_COLUMNS)).assign(
                market_key=pd.Series(dtype="string")
            )
        frame = self.db.execute(
            f"SELECT {', '.join(OBSERVATION_COLUMNS)}, market_key FROM observations"
        ).df()
        return typed_observations(frame).assign(market_key=frame["market_key"].astype("string"))

    def surveys(self) -> dict[str, SurveyInfo]:
        if self.is_new:
            return {}
        rows = self.db.execute(
            "SELECT name, title, measure, known_markets, compare FROM surveys ORDER BY name"
        ).fetchall()
        return {
            name: SurveyInfo(name, title, measure, known, compare)
            for name, title, measure, known, compare in rows
        }

    def panel(self) -> Panel:
        surveys = self.surveys()
        return Panel(
            observations=self.observations(),
            surveys=surveys,
            origin=f"workspace {self.path}",
            default_survey=self._default_survey(),
        )

    def report(self, options):
        """The report for `options` (a `ReportOptions`), computed inside DuckDB."""
        from .fastpath import report_from_workspace

        self._read_as_current()
        names = [
            name
            for (name,) in self.db.execute(
                "SELECT name FROM surveys WHERE survey_no IN (SELECT survey_no FROM observed) "
                "ORDER BY name"
            ).fetchall()
        ]
        return report_from_workspace(
            self.db,
            self.surveys(),
            names,
            self._default_survey(),
            options,
            f"workspace {self.path}",
        )

    def _default_survey(self) -> str | None:
        rows = self.db.execute("SELECT value FROM meta WHERE key = 'default_survey'").fetchall()
        return rows[0][0] if rows else None

    def known_labels(self) -> dict[str, str]:
        if self.is_new:
            return {}
        return dict(self.db.execute("SELECT label, market_key FROM aliases").fetchall())

    def import_count(self) -> tuple[int, int | None]:
        """How many imports the workspace records, and the last one's id. Every write that can
        change what `plan` sees (observations, markets, aliases) records an import, so while
        this stays the same, so does every plan made on the workspace."""
        if self.is_new:
            return 0, None
        count, last = self.db.execute("SELECT count(*), max(import_id) FROM imports").fetchall()[0]
        return count, last

    def imported_hashes(self) -> set[str]:
        if self.is_new:
            return set()
        return {row[0] for row in self.db.execute("SELECT sha256 FROM imports").fetchall()}

    def imports(self) -> pd.DataFrame:
        if self.is_new:
            return pd.DataFrame()
        return self.db.execute("SELECT * FROM imports ORDER BY import_id").df()

    def spellings(self) -> pd.DataFrame:
        """Markets seen under more than one spelling."""
        if self.is_new:
            return pd.DataFrame(columns=["market_key", "name", "spellings"])
        return self.db.execute(
            """SELECT a.market_key, m.name, string_agg(DISTINCT a.spelling, ' / ') AS spellings
               FROM aliases a JOIN markets m USING (market_key)
               GROUP BY a.market_key, m.name HAVING count(DISTINCT a.spelling) > 1
               ORDER BY m.name"""
        ).df()

    def survey_summary(self) -> pd.DataFrame:
        if self.is_new:
            return pd.DataFrame()
        self._read_as_current()
        return self.db.execute(
            """SELECT s.name AS survey, s.measure, min(o.year) AS first_year,
                      max(o.year) AS last_year, count(DISTINCT o.market_no) AS markets,
                      count(o.year) AS observations
               FROM surveys s LEFT JOIN observed o USING (survey_no)
               GROUP BY s.name, s.measure ORDER BY s.name"""
        ).df()

    # ------------------------------------------------------------------ planning

    def plan(
        self,
        files: list[FileToImport],
        replace: bool = False,
        strict: bool = False,
        surveys: Sequence[SurveyDeclaration] = (),
    ) -> ImportPlan:
        """What importing `files` would do. Raises `InputError` on conflicts, writes nothing."""
        hashes = self.imported_hashes()
        seen: set[str] = set()
        for f in files:
            f.already_imported = f.sha256 in hashes or f.sha256 in seen
            seen.add(f.sha256)
        new = [f.observations for f in files if not f.already_imported]
        incoming = pd.concat(new, ignore_index=True) if new else None
        if incoming is None or incoming.empty:
            return ImportPlan(files, _empty(), _empty(), 0, [], _labels(), list(surveys))
        existing = self.observations()
        identity = resolve_markets(
            pd.concat([existing.drop(columns="market_key"), incoming], ignore_index=True),
            known=self.known_labels(),
            fuzzy=not strict,
        )
        if strict and identity.merges:
            raise InputError(
                [
                    Problem(
                        ", ".join(m.merged_files),
                        f"--strict: '{m.merged}' looks like '{m.kept}' ({m.reason}); add a "
                        "market_id to both, or import without --strict to merge them",
                    )
                    for m in identity.merges
                ]
            )
        resolved = refuse_conflicts(identity.observations.iloc[len(existing) :])
        added, replaced, unchanged = _against_existing(resolved, existing, replace)
        labels = _new_labels(resolved, self.known_labels())
        return ImportPlan(files, added, replaced, unchanged, identity.merges, labels, list(surveys))

    # ------------------------------------------------------------------ writing

    @contextmanager
    def writing(self) -> Iterator[None]:
        """One transaction; a database or disk failure rolls it back and says so."""
        try:
            with self.transaction():
                yield
        except (duckdb.Error, OSError) as error:
            raise WorkspaceError(
                f"{self.path}: could not write the workspace ({first_line(str(error))}); "
                "nothing was written. Check free disk space and permissions, then import again"
            ) from None

    def apply(self, plan: ImportPlan) -> None:
        """Write a plan in one transaction; on any failure nothing is written."""
        now = datetime.now(UTC).replace(tzinfo=None)
        with self.writing():
            self._prepare(plan.surveys, sorted(set(plan.added["survey"].dropna())))
            ids = self._record_imports(plan, now)
            if not plan.replaced.empty:
                self._record_replacements(plan.replaced, ids)
            rows = pd.concat([plan.added, plan.replaced], ignore_index=True)
            added = rows.assign(import_id=rows["file"].map(ids).astype("int64"))
            self.db.register("incoming", added[[*OBSERVATION_COLUMNS, "market_key", "import_id"]])
            self._store_rows("incoming")
            self._check_stored_once("incoming")
            labels = plan.labels.assign(import_id=plan.labels["file"].map(ids).astype("int64"))
            self.db.register("new_labels", labels)
            self._add_aliases("SELECT label, market_key, market, import_id FROM new_labels")
            self.db.unregister("new_labels")
            self._refresh_markets("SELECT DISTINCT market_key FROM incoming")
            self.db.unregister("incoming")

    def _store_rows(self, rows: str) -> None:
        """Store the observations of the table `rows` (`OBSERVATION_COLUMNS`, `market_key`,
        `import_id`): number their new markets (described from these rows until
        `_refresh_markets` describes them from all) and spellings, then write `observed` and
        `details`."""
        self._number_markets(_first_recorded(rows))
        self._number_spellings(
            f"SELECT {', '.join(SPELLING_COLUMNS)}, {FIRST_SEEN} AS first_seen FROM {rows}"
        )
        numbered = _with_numbers(rows)
        self.db.execute(
            f"""INSERT INTO observed
                SELECT s.survey_no, m.market_no, r.year, w.spelling_no, r.stall_area_m2,
                       r.open_area_m2, r.import_id, r.line
                FROM {numbered} JOIN spellings w ON {_same_spelling("w", "r")}"""
        )
        details = ", ".join(f"r.{c}" for c in DETAIL_COLUMNS)
        self.db.execute(
            f"""INSERT INTO details
                SELECT s.survey_no, m.market_no, r.year, {details}
                FROM {numbered}
                WHERE {" OR ".join(f"r.{c} IS NOT NULL" for c in DETAIL_COLUMNS)}"""
        )

    def _number_markets(self, described: str) -> None:
        """Add the markets of the SQL `described` (`market_key`, `market_id`, `market`,
        `town`, `province`, `lat`, `lon`, `first_seen`; one row a key) that are new, numbered
        after the others in the order they were first seen."""
        self.db.execute(
            f"""CREATE OR REPLACE TEMP TABLE new_markets AS SELECT * FROM ({described}) d
                WHERE d.market_key NOT IN (SELECT market_key FROM markets)"""
        )
        self.db.execute(
            f"""INSERT INTO markets
                SELECT (SELECT coalesce(max(market_no), 0) FROM markets) + n.number,
                       d.market_key, d.market_id, d.market, d.town, d.province, d.lat, d.lon
                FROM new_markets d JOIN ({_numbered_rows("new_markets")}) n ON d.rowid = n.id"""
        )

    def _number_groups(self, one_group_each: bool) -> None:
        """Add the markets and spellings of the fast import's groups (`keys`) that are new, and
        give each group its market and spelling numbers (`numbered`). In a workspace without
        markets where each group is a market, one number serves as both, in the order first
        seen, as `_number_markets` and `_number_spellings` would give them, without their joins
        on text (≈ 1 s less for a million markets)."""
        markets = self.db.execute("SELECT count(*) FROM markets").fetchall()[0][0]
        if not one_group_each or markets:
            self._number_markets(_markets_of_groups(one_group_each))
            self._number_spellings(
                "SELECT NULL::VARCHAR AS market_id, spelling AS market, town, "
                "first_row AS first_seen FROM keys",
                distinct=one_group_each,
            )
            self.db.execute(
                """CREATE OR REPLACE TEMP TABLE numbered AS
                    SELECT k.market_key, m.market_no, w.spelling_no
                    FROM keys k JOIN markets m ON m.market_key = k.key
                         JOIN spellings w ON w.market_id IS NULL AND w.market = k.spelling
                              AND w.town IS NOT DISTINCT FROM k.town"""
            )
            return
        self.db.execute(
            """CREATE OR REPLACE TEMP TABLE numbered AS
               SELECT market_key, number AS market_no, number AS spelling_no FROM (
                 SELECT market_key, row_number() OVER (ORDER BY first_row)::INTEGER AS number
                 FROM keys)"""
        )
        groups = "keys k JOIN numbered n USING (market_key)"
        self.db.execute(
            f"""INSERT INTO markets SELECT n.market_no, k.key, NULL, k.spelling, k.town,
                                           k.province, k.lat, k.lon FROM {groups}"""
        )
        self.db.execute(
            f"INSERT INTO spellings SELECT n.spelling_no, NULL, k.spelling, k.town FROM {groups}"
        )

    def _add_aliases(self, aliases: str) -> None:
        """Add the aliases of the SQL `aliases` (one row a label) whose labels are new."""
        self.db.execute(
            f"""INSERT INTO aliases SELECT * FROM ({aliases}) a (label)
                WHERE label NOT IN (SELECT label FROM aliases)"""
        )

    def _number_spellings(self, spellings: str, distinct: bool = False) -> None:
        """Add the spellings (id, name, town) of the SQL `spellings` (with `first_seen`) that
        are new, numbered after the others in the order they were first seen. With
        `distinct`, `spellings` has each spelling once (no need to group)."""
        columns = ", ".join(SPELLING_COLUMNS)
        first_seen, grouped = "min(first_seen)", f"GROUP BY {columns}"
        if distinct:
            first_seen, grouped = "first_seen", ""
        self.db.execute(
            f"""CREATE OR REPLACE TEMP TABLE new_spellings AS
                SELECT {columns}, {first_seen} AS first_seen FROM ({spellings}) n
                WHERE NOT EXISTS (SELECT 1 FROM spellings w WHERE {_same_spelling("w", "n")})
                {grouped}"""
        )
        self.db.execute(
            f"""INSERT INTO spellings
                SELECT (SELECT coalesce(max(spelling_no), 0) FROM spellings) + n.number,
                       {columns}
                FROM new_spellings d JOIN ({_numbered_rows("new_spellings")}) n ON d.rowid = n.id"""
        )

    def _check_stored_once(self, rows: str) -> None:
        """Each (survey, market, year) of the table `rows` is stored once: what the primary
        key of schema 1 guaranteed, checked for the rows just written (the plan already split
        them into new and replacing, so a failure here is a bug, and rolls the import back)."""
        twice = self.db.execute(
            f"""SELECT count(*) FROM (
                 SELECT 1 FROM observed WHERE (survey_no, market_no, year) IN
                     (SELECT (s.survey_no, m.market_no, r.year) FROM {_with_numbers(rows)})
                 GROUP BY survey_no, market_no, year HAVING count(*) > 1)"""
        ).fetchall()[0][0]
        if twice:
            raise RuntimeError(f"marketdelta bug: {twice} observations would be stored twice")

    def _prepare(self, declarations: Sequence[SurveyDeclaration], surveys: list[str]) -> None:
        """The schema for a new workspace, the surveys declared or seen, the main survey."""
        if self.is_new:
            for statement in SCHEMA:
                self.db.execute(statement)
            self._set_version()
        for name in [*(info.name for info in declarations), *surveys]:
            self.db.execute(
                """INSERT INTO surveys (name, survey_no)
                   SELECT ?, coalesce(max(survey_no), 0) + 1 FROM surveys
                   ON CONFLICT DO NOTHING""",
                [name],
            )
        for info in declarations:
            self._declare_survey(info)
        first = (declarations[0].name if declarations else None) or next(iter(surveys), None)
        if first:  # the workspace's main survey: the first one imported
            self.db.execute(
                "INSERT INTO meta VALUES ('default_survey', ?) ON CONFLICT DO NOTHING", [first]
            )

    def apply_fast(
        self,
        survey: str,
        files: pd.DataFrame,
        declarations: Sequence[SurveyDeclaration],
        details: list[str],
        exact: bool,
        one_group_each: bool,
    ) -> int:
        """Write what `fastpath.import_files` prepared, in one transaction: its view `incoming`
        (the rows to store, keyed by spelling group, with the `details` columns the files
        have), its `keys` (each group's label, market key, spelling, town, first year, first row
        and the number of the file it was first met in) and `files` (each file's `file` number,
        `name`, `sha256`, `rows` and `first_row`). With `exact`, the groups describe their
        markets as the rows would (a new workspace, no provinces or coordinates). With
        `one_group_each`, each market is one group, and so each label and each spelling (as
        trimmed, which keeps the label). Returns the number of observations added."""
        now = datetime.now(UTC).replace(tzinfo=None)
        with self.writing():
            self._prepare(declarations, [survey])
            first_id = self._last_import_id() + 1
            for row in files.itertuples(index=False):
                self.db.execute(
                    "INSERT INTO imports VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?)",
                    [first_id + row.file, row.name, row.sha256, row.rows, row.rows, survey, now,
                     __version__],
                )  # fmt: skip
            self._number_groups(one_group_each)
            number = "(SELECT survey_no FROM surveys WHERE name = $survey)"
            rows = "incoming o JOIN numbered n USING (market_key)"
            self.db.execute(
                f"""INSERT INTO observed
                    SELECT {number}, n.market_no, o.year, n.spelling_no, o.stall_area_m2,
                           o.open_area_m2, {first_id} + o.file, {_line_of_row(files)}
                    FROM {rows}""",
                {"survey": survey},
            )
            if details:
                self.db.execute(
                    f"""INSERT INTO details (survey_no, market_no, year, {", ".join(details)})
                        SELECT {number}, n.market_no, o.year, {", ".join(details)} FROM {rows}
                        WHERE {" OR ".join(f"{c} IS NOT NULL" for c in details)}""",
                    {"survey": survey},
                )
            import_id = f"{first_id} + first_file"
            if one_group_each:  # each label is one group: nothing to aggregate
                self._add_aliases(f"SELECT label, key, spelling, {import_id} FROM keys")
            else:
                self._add_aliases(
                    f"""SELECT label, any_value(key), arg_min(spelling, first_year),
                               min({import_id})
                        FROM keys GROUP BY label"""
                )
            if not exact:
                self._refresh_markets("SELECT DISTINCT key AS market_key FROM keys")
        return int(files["rows"].sum())

    def _declare_survey(self, info: SurveyDeclaration) -> None:
        self.db.execute(
            """UPDATE surveys SET title = coalesce(?, title), measure = coalesce(?, measure),
                                  known_markets = coalesce(?, known_markets),
                                  compare = coalesce(?, compare)
               WHERE name = ?""",
            [info.title, info.measure, info.known_markets, info.compare, info.name],
        )

    def _last_import_id(self) -> int:
        # fetchall, not fetchone: a result left unfinished makes DuckDB refuse `register`
        return self.db.execute("SELECT coalesce(max(import_id), 0) FROM imports").fetchall()[0][0]

    def _record_imports(self, plan: ImportPlan, now: datetime) -> dict[str, int]:
        start = self._last_import_id()
        ids = {}
        for offset, f in enumerate(plan.new_files, 1):
            ids[f.path] = start + offset
            surveys = sorted(set(f.observations["survey"].dropna()))
            self.db.execute(
                "INSERT INTO imports VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    start + offset,
                    f.path,
                    f.sha256,
                    len(f.observations),
                    int((plan.added["file"] == f.path).sum()),
                    int((plan.replaced["file"] == f.path).sum()),
                    ", ".join(surveys),
                    now,
                    __version__,
                ],
            )
        return ids

    def _record_replacements(self, replaced: pd.DataFrame, ids: dict[str, int]) -> None:
        frame = replaced.assign(import_id=replaced["file"].map(ids).astype("int64"))
        self.db.register("replaced_rows", frame)
        self.db.execute(
            """INSERT INTO replacements
               SELECT r.import_id, r.survey, r.market_key, r.year, o.stall_area_m2,
                      o.open_area_m2, r.stall_area_m2, r.open_area_m2, o.import_id
               FROM replaced_rows r JOIN observations o USING (survey, market_key, year)"""
        )
        for table in ("observed", "details"):
            self.db.execute(
                f"""DELETE FROM {table} o USING (
                      SELECT s.survey_no, m.market_no, r.year
                      FROM {_with_numbers("replaced_rows")}) r
                    WHERE o.survey_no = r.survey_no AND o.market_no = r.market_no
                          AND o.year = r.year"""
            )
        self.db.unregister("replaced_rows")

    def _refresh_markets(self, keys: str) -> None:
        """Each market's first recorded spelling, town, province and coordinates, for the
        markets whose keys the SQL `keys` selects."""
        self.db.execute(f"CREATE OR REPLACE TEMP TABLE refreshed AS {keys}")
        first = _first_recorded("observations", "market_key IN (SELECT market_key FROM refreshed)")
        self.db.execute(
            f"""UPDATE markets SET market_id = f.market_id, name = f.market, town = f.town,
                       province = f.province, lat = f.lat, lon = f.lon
                FROM ({first}) f WHERE markets.market_key = f.market_key"""
        )


class _Transaction:
    def __init__(self, db: duckdb.DuckDBPyConnection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN TRANSACTION")
        return self

    def __exit__(self, kind, error, trace) -> None:
        if kind is None:
            self.db.execute("COMMIT")
        else:
            self.db.execute("ROLLBACK")


def _against_existing(
    incoming: pd.DataFrame, existing: pd.DataFrame, replace: bool
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Split incoming rows into new ones, replacements, and ones already stored as they are."""
    matched = incoming.merge(
        existing[[*KEY_COLUMNS, *AREA_COLUMNS, "file", "line"]],
        on=KEY_COLUMNS,
        how="left",
        suffixes=("", "_old"),
        indicator=True,
    )
    present = (matched["_merge"] == "both").to_numpy()
    same = (
        (matched["stall_area_m2"].fillna(-1) == matched["stall_area_m2_old"].fillna(-1))
        & (matched["open_area_m2"].fillna(-1) == matched["open_area_m2_old"].fillna(-1))
    ).to_numpy()
    conflicts = matched[present & ~same]
    if not conflicts.empty and not replace:
        raise InputError(
            [
                Problem(
                    str(row.file),
                    f"the workspace already has '{row.market}' ({row.survey}, {row.year}) "
                    f"with {row.stall_area_m2_old:g} m² from {row.file_old} line {row.line_old}; "
                    "give --replace to replace it",
                    int(row.line),
                    "stall_area_m2",
                    "" if pd.isna(row.stall_area_m2) else f"{row.stall_area_m2:g}",
                )
                for row in conflicts.itertuples()
            ]
        )
    return incoming[~present], incoming[present & ~same], int((present & same).sum())


def _new_labels(resolved: pd.DataFrame, known: dict[str, str]) -> pd.DataFrame:
    labels = resolved.assign(label=exact_labels(resolved))[
        ["label", "market_key", "market", "file"]
    ]
    return (
        labels[~labels["label"].isin(known.keys())].drop_duplicates("label").reset_index(drop=True)
    )


def _empty() -> pd.DataFrame:
    return typed_observations(pd.DataFrame(columns=OBSERVATION_COLUMNS)).assign(
        market_key=pd.Series(dtype="string")
    )


def _labels() -> pd.DataFrame:
    return pd.DataFrame(columns=["label", "market_key", "market", "file"])
