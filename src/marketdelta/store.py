"""The workspace: one DuckDB file holding every survey file imported, with provenance.

Import is planned first and written second. `plan_import` reads and validates every file and
works out what would be added, replaced and merged, without writing; `Workspace.apply` writes a
plan in one transaction. Any error before the commit leaves the database as it was (DuckDB's
write-ahead log makes a `kill -9` at any moment safe too).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from .__about__ import __version__
from .errors import InputError, Problem, WorkspaceError
from .identity import Merge, exact_labels, resolve_markets
from .sources import Panel, SurveyInfo, refuse_conflicts
from .survey import OBSERVATION_COLUMNS, ReadOptions, read_survey, typed_observations

SCHEMA_VERSION = 2
OLDEST_READABLE = 1  # schema 2 only dropped a constraint: a schema-1 workspace reads the same
LOCK_WAIT_ENV = "MARKETDELTA_LOCK_WAIT"  # seconds to wait for a busy workspace (default 5)

SCHEMA = [
    "CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)",
    """CREATE TABLE surveys (
        name VARCHAR PRIMARY KEY,
        title VARCHAR,
        measure VARCHAR NOT NULL DEFAULT 'stall',   -- stall | open | total
        known_markets INTEGER,                       -- the universe coverage is measured against
        compare VARCHAR                              -- survey compared with by default
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
    """CREATE TABLE markets (
        market_key VARCHAR PRIMARY KEY,              -- id:<market_id> or nt:<name>|<town>
        market_id VARCHAR, name VARCHAR NOT NULL, town VARCHAR, province VARCHAR,
        lat DOUBLE, lon DOUBLE
    )""",
    """CREATE TABLE aliases (
        label VARCHAR PRIMARY KEY,                   -- every exact spelling label seen
        market_key VARCHAR NOT NULL,
        spelling VARCHAR NOT NULL,
        import_id INTEGER NOT NULL                   -- the import that first brought it
    )""",
    """CREATE TABLE observations (                   -- one row per (survey, market_key, year)
        survey VARCHAR NOT NULL, market_key VARCHAR NOT NULL, year INTEGER NOT NULL,
        market_id VARCHAR, market VARCHAR NOT NULL, town VARCHAR, province VARCHAR,
        lat DOUBLE, lon DOUBLE, stall_area_m2 DOUBLE, open_area_m2 DOUBLE,
        imagery_date VARCHAR, source VARCHAR, status VARCHAR, notes VARCHAR,
        file VARCHAR NOT NULL, line INTEGER NOT NULL, import_id INTEGER NOT NULL
    )""",
    """CREATE TABLE replacements (                   -- what each --replace import replaced
        import_id INTEGER NOT NULL, survey VARCHAR NOT NULL, market_key VARCHAR NOT NULL,
        year INTEGER NOT NULL, old_stall_area_m2 DOUBLE, old_open_area_m2 DOUBLE,
        new_stall_area_m2 DOUBLE, new_open_area_m2 DOUBLE, old_import_id INTEGER NOT NULL
    )""",
]
# Migrations from version N to N + 1, applied in order when an older workspace is opened
# for writing.
MIGRATIONS: dict[int, list[str]] = {
    # 1 -> 2: observations without the primary key, which DuckDB maintained row by row (a
    # quarter to a third of a large import's time). Imports keep each key once instead: the
    # reference import plans new and replacing rows and checks them after writing
    # (`_check_stored_once`); the fast import only adds files whose keys are new and unique.
    1: [
        "ALTER TABLE observations RENAME TO observations_v1",
        next(statement for statement in SCHEMA if "TABLE observations" in statement),
        "INSERT INTO observations SELECT * FROM observations_v1",
        "DROP TABLE observations_v1",
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


class Workspace:
    """A marketdelta workspace: open it with `Workspace.open(path, write=...)`."""

    def __init__(self, path: Path, connection: duckdb.DuckDBPyConnection, write: bool):
        self.path = path
        self.db = connection
        self.write = write

    # ------------------------------------------------------------------ opening

    @classmethod
    def empty(cls, path: str | Path) -> Workspace:
        """An empty, in-memory stand-in for a workspace that does not exist yet (for planning)."""
        return cls(Path(path), quiet_connection(":memory:"), write=False)

    @classmethod
    def open(cls, path: str | Path, write: bool = False) -> Workspace:
        path = Path(path)
        if not write and not path.exists():
            raise WorkspaceError(f"{path}: no workspace here; create one with `marketdelta import`")
        if write and not path.parent.exists():
            raise WorkspaceError(f"{path.parent}: no such directory for the workspace")
        connection = _connect(path, read_only=not write)
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
            row[0] for row in self.db.execute("SELECT table_name FROM duckdb_tables()").fetchall()
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
        if version < SCHEMA_VERSION:
            if not self.write and version < OLDEST_READABLE:
                raise WorkspaceError(
                    f"{self.path}: the workspace uses schema {version}; run any "
                    "`marketdelta import` to upgrade it"
                )
            if self.write:
                self._migrate(version)

    def _migrate(self, version: int) -> None:
        with self.transaction():
            for step in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[step]:
                    self.db.execute(statement)
            self._set_version()

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
        default = self.db.execute("SELECT value FROM meta WHERE key = 'default_survey'").fetchone()
        return Panel(
            observations=self.observations(),
            surveys=surveys,
            origin=f"workspace {self.path}",
            default_survey=default[0] if default else None,
        )

    def report(self, options):
        """The report for `options` (a `ReportOptions`), computed inside DuckDB."""
        from .fastpath import report_from_workspace

        names = [
            name
            for (name,) in self.db.execute(
                "SELECT DISTINCT survey FROM observations ORDER BY survey"
            ).fetchall()
        ]
        default = self.db.execute("SELECT value FROM meta WHERE key = 'default_survey'").fetchone()
        return report_from_workspace(
            self.db,
            self.surveys(),
            names,
            default[0] if default else None,
            options,
            f"workspace {self.path}",
        )

    def known_labels(self) -> dict[str, str]:
        if self.is_new:
            return {}
        return dict(self.db.execute("SELECT label, market_key FROM aliases").fetchall())

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
        return self.db.execute(
            """SELECT s.name AS survey, s.measure, min(o.year) AS first_year,
                      max(o.year) AS last_year, count(DISTINCT o.market_key) AS markets,
                      count(*) AS observations
               FROM surveys s LEFT JOIN observations o ON o.survey = s.name
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
                f"{self.path}: could not write the workspace ({_first_line(str(error))}); "
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
            columns = ", ".join([*OBSERVATION_COLUMNS, "market_key", "import_id"])
            self.db.execute(f"INSERT INTO observations ({columns}) SELECT {columns} FROM incoming")
            self._check_stored_once("incoming")
            self.db.unregister("incoming")
            labels = plan.labels.assign(import_id=plan.labels["file"].map(ids).astype("int64"))
            self.db.register("new_labels", labels)
            self.db.execute(
                "INSERT INTO aliases SELECT label, market_key, market, import_id FROM new_labels "
                "ON CONFLICT DO NOTHING"
            )
            self.db.unregister("new_labels")
            self._refresh_markets()

    def _check_stored_once(self, rows: str) -> None:
        """Each (survey, market_key, year) of the table `rows` is stored once: what the primary
        key of schema 1 guaranteed, checked for the rows just written (the plan already split
        them into new and replacing, so a failure here is a bug, and rolls the import back)."""
        twice = self.db.execute(
            f"""SELECT count(*) FROM (
                 SELECT 1 FROM observations WHERE (survey, market_key, year) IN
                     (SELECT (survey, market_key, year) FROM {rows})
                 GROUP BY survey, market_key, year HAVING count(*) > 1)"""
        ).fetchall()[0][0]
        if twice:
            raise RuntimeError(f"marketdelta bug: {twice} observations would be stored twice")

    def _prepare(self, declarations: Sequence[SurveyDeclaration], surveys: list[str]) -> None:
        """The schema for a new workspace, the surveys declared or seen, the main survey."""
        if self.is_new:
            for statement in SCHEMA:
                self.db.execute(statement)
            self._set_version()
        for info in declarations:
            self._declare_survey(info)
        for name in surveys:
            self.db.execute("INSERT INTO surveys (name) VALUES (?) ON CONFLICT DO NOTHING", [name])
        first = (declarations[0].name if declarations else None) or next(iter(surveys), None)
        if first:  # the workspace's main survey: the first one imported
            self.db.execute(
                "INSERT INTO meta VALUES ('default_survey', ?) ON CONFLICT DO NOTHING", [first]
            )

    def apply_fast(
        self,
        survey: str,
        files: list,
        hashes: list[str],
        declarations: Sequence[SurveyDeclaration],
        fresh: bool = False,
    ) -> int:
        """Write the fast path's temporary tables `keyed` and `keys` (see
        `fastpath.import_files`) in one transaction; returns the number of observations added."""
        now = datetime.now(UTC).replace(tzinfo=None)
        with self.writing():
            self._prepare(declarations, [survey])
            start = self.db.execute("SELECT coalesce(max(import_id), 0) FROM imports").fetchall()[
                0
            ][0]
            ids = pd.DataFrame(
                {
                    "file": [str(f) for f in files],
                    "import_id": range(start + 1, start + 1 + len(files)),
                }
            )
            self.db.register("import_ids", ids)
            for (file, import_id), sha in zip(ids.itertuples(index=False), hashes, strict=True):
                rows = self.db.execute(
                    "SELECT count(*) FROM keyed WHERE file = ?", [file]
                ).fetchone()[0]
                self.db.execute(
                    "INSERT INTO imports VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?)",
                    [import_id, file, sha, rows, rows, survey, now, __version__],
                )
            self.db.execute(
                """INSERT INTO observations (survey, market_key, year, market_id, market, town,
                     province, lat, lon, stall_area_m2, open_area_m2, imagery_date, source,
                     status, notes, file, line, import_id)
                   SELECT ?, k.key, k.year, NULL, k.market, k.town, k.province, k.lat, k.lon,
                          k.stall_area_m2, k.open_area_m2, NULL, k.source, k.status, k.notes,
                          k.file, k.line, i.import_id
                   FROM keyed k JOIN import_ids i USING (file)""",
                [survey],
            )
            self.db.execute(
                """INSERT INTO aliases
                   SELECT label, any_value(key), arg_min(spelling, first_year), min(i.import_id)
                   FROM keys k JOIN import_ids i ON i.file = k.first_file
                   GROUP BY label ON CONFLICT DO NOTHING"""
            )
            if fresh:  # every row is in `keyed`, one a year per market: first by year
                first = ", ".join(
                    f"arg_min({c}, year) FILTER (WHERE {c} IS NOT NULL)"
                    for c in ("market", "town", "province", "lat", "lon")
                )
                self.db.execute(
                    f"INSERT INTO markets SELECT key, NULL, {first} FROM keyed GROUP BY key"
                )
            else:
                self._refresh_markets("SELECT DISTINCT key FROM keys")
            added = self.db.execute("SELECT count(*) FROM keyed").fetchall()[0][0]
        return added

    def _declare_survey(self, info: SurveyDeclaration) -> None:
        self.db.execute(
            """INSERT INTO surveys (name, title, measure, known_markets, compare)
               VALUES (?, ?, coalesce(?, 'stall'), ?, ?)
               ON CONFLICT (name) DO UPDATE SET
                 title = coalesce(excluded.title, surveys.title),
                 measure = coalesce(?, surveys.measure),
                 known_markets = coalesce(excluded.known_markets, surveys.known_markets),
                 compare = coalesce(excluded.compare, surveys.compare)""",
            [info.name, info.title, info.measure, info.known_markets, info.compare, info.measure],
        )

    def _record_imports(self, plan: ImportPlan, now: datetime) -> dict[str, int]:
        start = self.db.execute("SELECT coalesce(max(import_id), 0) FROM imports").fetchone()[0]
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
        self.db.execute(
            """DELETE FROM observations o USING replaced_rows r
               WHERE o.survey = r.survey AND o.market_key = r.market_key AND o.year = r.year"""
        )
        self.db.unregister("replaced_rows")

    def _refresh_markets(self, keys: str | None = None) -> None:
        """Each market's first recorded spelling, town, province and coordinates: of every
        market, or of the markets whose keys the SQL `keys` selects."""
        order = "(year, file, line)"
        first = ", ".join(
            f"arg_min({c}, {order}) FILTER (WHERE {c} IS NOT NULL)"
            for c in ("market_id", "market", "town", "province", "lat", "lon")
        )
        if keys is None:
            self.db.execute("DELETE FROM markets")
            self.db.execute(
                f"INSERT INTO markets SELECT market_key, {first} FROM observations "
                "GROUP BY market_key"
            )
            return
        self.db.execute(f"CREATE OR REPLACE TEMP TABLE refreshed AS {keys}")
        self.db.execute("DELETE FROM markets WHERE market_key IN (SELECT * FROM refreshed)")
        self.db.execute(
            f"""INSERT INTO markets SELECT market_key, {first} FROM observations
                WHERE market_key IN (SELECT * FROM refreshed) GROUP BY market_key"""
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


def _connect(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    """Open the database, waiting a few seconds if another process holds it."""
    deadline = time.monotonic() + float(os.environ.get(LOCK_WAIT_ENV, "5"))
    while True:
        try:
            return quiet_connection(str(path), read_only=read_only)
        except duckdb.IOException as error:
            text = str(error)
            if "lock" not in text.lower():
                raise WorkspaceError(
                    f"{path}: cannot open the workspace ({_first_line(text)})"
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
                f"({_first_line(str(error))}); choose another path with --db"
            ) from None


def quiet_connection(database: str = ":memory:", read_only: bool = False):
    """A DuckDB connection that never draws its own progress bar (it would land in our
    output, e.g. in the middle of a JSON report)."""
    connection = duckdb.connect(database, read_only=read_only)
    connection.execute("SET enable_progress_bar = false")
    return connection


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


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
