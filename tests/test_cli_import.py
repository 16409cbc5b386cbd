"""The workspace: import, provenance, no double counting, all-or-nothing writes."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest
from conftest import interrupted_query, write

from marketdelta.sources import demo_dir

DEMO = demo_dir()
STALLS = sorted((DEMO / "stalls").glob("stalls-*.csv"))
NATIONAL = sorted((DEMO / "national").glob("national-*.csv"))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_import_one_by_one_equals_reading_the_files(tmp_path, run, run_json):
    db = tmp_path / "ws.duckdb"
    for path in STALLS:
        result = run("import", path, "--db", db, "--survey", "stalls")
        assert result.exit_code == 0, result.output
    direct = run_json("report", *STALLS, "--survey", "stalls")
    assert run_json("report", "--db", db) == direct


def test_demo_imported_into_a_workspace_reports_the_published_figures(tmp_path, run, run_json):
    db = tmp_path / "ws.duckdb"
    stalls = ["--survey", "stalls", "--known-markets", "477", "--compare", "national"]
    assert run("import", *STALLS, "--db", db, *stalls).exit_code == 0
    assert (
        run("import", *NATIONAL, "--db", db, "--survey", "national", "--measure", "total").exit_code
        == 0
    )
    demo = run_json("report")
    assert run_json("report", "--db", db) == demo
    assert demo["net_m2"] == 9905


def test_workspace_from_environment_and_current_directory(tmp_path, run, run_json, monkeypatch):
    data = write(tmp_path / "a.csv", "market,year,stall_area_m2\nA,2020,1\nA,2021,5\n")
    assert run("import", data).exit_code == 0  # ./marketdelta.duckdb
    assert (tmp_path / "marketdelta.duckdb").exists()
    assert run_json("report")["net_m2"] == 4
    monkeypatch.setenv("MARKETDELTA_DB", str(tmp_path / "other.duckdb"))
    assert run("import", data).exit_code == 0
    assert (tmp_path / "other.duckdb").exists()


def test_reimport_is_a_noop(tmp_path, run, run_json):
    db = tmp_path / "ws.duckdb"
    run("import", *STALLS[:2], "--db", db)
    before = run_json("report", "--db", db)
    result = run("import", STALLS[0], "--db", db)
    assert result.exit_code == 0
    assert "already imported" in result.stderr
    assert run_json("report", "--db", db) == before


def test_a_survey_is_declared_on_files_already_imported(tmp_path, run, run_json):
    """Re-importing a file to declare its survey writes the declaration only (it failed with
    DuckDB's "unfinished result" error when no file was new)."""
    db = tmp_path / "ws.duckdb"
    run("import", *STALLS[:2], "--db", db, "--survey", "stalls")
    before = run_json("report", "--db", db)
    result = run("import", STALLS[0], "--db", db, "--survey", "stalls", "--known-markets", "477")
    assert result.exit_code == 0, result.output
    after = run_json("report", "--db", db)
    assert after["universe"]["known_markets"] == 477
    assert {**after, "universe": None} == {**before, "universe": None}


def test_conflict_without_replace_leaves_the_database_byte_identical(tmp_path, run, run_json):
    db = tmp_path / "ws.duckdb"
    first = write(
        tmp_path / "a.csv", "market,town,year,stall_area_m2\nA,T,2020,100\nA,T,2021,150\n"
    )
    fixed = write(tmp_path / "b.csv", "market,town,year,stall_area_m2\nA,T,2021,180\n")
    run("import", first, "--db", db)
    before = digest(db)
    result = run("import", fixed, "--db", db)
    assert result.exit_code == 1
    assert "already has 'A' (default, 2021) with 150 m²" in result.stderr
    assert "--replace" in result.stderr
    assert digest(db) == before

    result = run("import", fixed, "--db", db, "--replace")
    assert result.exit_code == 0, result.output
    assert run_json("report", "--db", db)["net_m2"] == 80
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute(
            "SELECT old_stall_area_m2, new_stall_area_m2 FROM replacements"
        ).fetchall() == [(150.0, 180.0)]


def test_a_bad_third_file_rolls_back_all_three(tmp_path, run):
    db = tmp_path / "ws.duckdb"
    run("import", write(tmp_path / "0.csv", "market,year,stall_area_m2\nZ,2019,1\n"), "--db", db)
    before = digest(db)
    good1 = write(tmp_path / "1.csv", "market,year,stall_area_m2\nA,2020,1\n")
    good2 = write(tmp_path / "2.csv", "market,year,stall_area_m2\nA,2021,2\n")
    bad = write(tmp_path / "3.csv", "market,year,stall_area_m2\nA,2022,two\n")
    result = run("import", good1, good2, bad, "--db", db)
    assert result.exit_code == 1
    assert f"{bad}:2: column 'stall_area_m2': value 'two'" in result.stderr
    assert digest(db) == before


def test_failure_while_writing_rolls_back(tmp_path, run, monkeypatch):
    from marketdelta.store import Workspace

    db = tmp_path / "ws.duckdb"
    run("import", write(tmp_path / "0.csv", "market,year,stall_area_m2\nZ,2019,1\n"), "--db", db)

    def disk_full(self, *_):
        raise duckdb.IOException("No space left on device")

    monkeypatch.setattr(Workspace, "_refresh_markets", disk_full)
    data = write(tmp_path / "1.csv", "market,year,stall_area_m2\nA,2020,1\n")
    result = run("import", data, "--db", db)
    assert result.exit_code == 1
    assert "could not write the workspace (No space left on device); nothing was written" in (
        result.stderr
    )
    assert "Traceback" not in result.output
    monkeypatch.undo()
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM observations").fetchone()[0] == 1
        assert con.execute("SELECT count(*) FROM imports").fetchone()[0] == 1


def test_new_workspace_is_not_created_when_input_is_rejected(tmp_path, run):
    db = tmp_path / "ws.duckdb"
    bad = write(tmp_path / "bad.csv", "market,year,stall_area_m2\nA,2020,-1\n")
    assert run("import", bad, "--db", db).exit_code == 1
    assert not db.exists()


def test_ctrl_c_during_a_fast_import_leaves_no_new_workspace(tmp_path, monkeypatch):
    from marketdelta.cli import main

    db = tmp_path / "ws.duckdb"
    plain = write(tmp_path / "plain.csv", "market,town,year,stall_area_m2\nA,T,2020,100\n")
    monkeypatch.setenv("MARKETDELTA_FAST_OBSERVATIONS", "0")  # the early read opens the workspace
    monkeypatch.setattr("marketdelta.fastpath.import_into", interrupted_query)
    monkeypatch.setattr("sys.argv", ["marketdelta", "import", str(plain), "--db", str(db)])
    with pytest.raises(SystemExit) as leaving:
        main()
    assert leaving.value.code == 130
    assert not db.exists() and not db.with_name("ws.duckdb.wal").exists()


@pytest.mark.parametrize("stop", ["ctrl-c", "disk full"])
def test_a_stopped_reference_import_leaves_no_new_workspace(tmp_path, monkeypatch, stop):
    from marketdelta.cli import main
    from marketdelta.store import Workspace

    def disk_full(*_):
        raise duckdb.IOException("No space left on device")

    db = tmp_path / "ws.duckdb"
    small = write(tmp_path / "small.csv", "market,year,stall_area_m2\nA,2020,100\n")
    if stop == "ctrl-c":
        monkeypatch.setattr(Workspace, "apply", interrupted_query)
    else:  # inside the transaction, as `test_failure_while_writing_rolls_back` fails it
        monkeypatch.setattr(Workspace, "_refresh_markets", disk_full)
    monkeypatch.setattr("sys.argv", ["marketdelta", "import", str(small), "--db", str(db)])
    with pytest.raises(SystemExit) as leaving:
        main()
    assert leaving.value.code == (130 if stop == "ctrl-c" else 1)
    assert not db.exists() and not db.with_name("ws.duckdb.wal").exists()


def test_dry_run_writes_nothing(tmp_path, run):
    db = tmp_path / "ws.duckdb"
    result = run("import", *STALLS, "--db", db, "--dry-run")
    assert result.exit_code == 0
    assert "would add 713 observations" in result.stderr
    assert "Nampo-Wadu" in result.stderr
    assert not db.exists()


def test_spelling_merged_once_is_recognised_later(tmp_path, run):
    db = tmp_path / "ws.duckdb"
    a = write(tmp_path / "a.csv", "market,town,year,stall_area_m2\nNampo-Waudo,Nampo,2020,600\n")
    b = write(tmp_path / "b.csv", "market,town,year,stall_area_m2\nNampo-Wadu,Nampo,2024,0\n")
    c = write(tmp_path / "c.csv", "market,town,year,stall_area_m2\nNampo-Wadu,Nampo,2025,0\n")
    run("import", a, "--db", db)
    assert "taken to be 'Nampo-Waudo'" in run("import", b, "--db", db).stderr
    third = run("import", c, "--db", db)
    assert "merge:" not in third.stderr  # an exact alias now
    status = run("status", "--db", db)
    assert "Nampo-Waudo / Nampo-Wadu" in status.stdout
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM markets").fetchone()[0] == 1


def test_strict_refuses_fuzzy_merges(tmp_path, run):
    db = tmp_path / "ws.duckdb"
    result = run("import", *STALLS, "--db", db, "--strict")
    assert result.exit_code == 1
    assert "'Nampo-Wadu' looks like 'Nampo-Waudo'" in result.stderr
    assert not db.exists()


def test_status_lists_surveys_and_imports(tmp_path, run, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    db = tmp_path / "ws.duckdb"
    run("import", STALLS[0], "--db", db, "--survey", "stalls")
    result = run("status", "--db", db)
    assert result.exit_code == 0
    assert "stalls" in result.stdout and "stalls-2020.csv" in result.stdout
    assert digest(STALLS[0])[:12] in result.stdout


def test_newer_schema_is_refused(tmp_path, run):
    db = tmp_path / "ws.duckdb"
    run("import", STALLS[0], "--db", db)
    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    before = digest(db)
    for args in (("report", "--db", db), ("import", STALLS[1], "--db", db)):
        result = run(*args)
        assert result.exit_code == 1
        assert "newer marketdelta" in result.stderr
    assert digest(db) == before


SCHEMA_1 = {
    "surveys": """(name VARCHAR PRIMARY KEY, title VARCHAR,
        measure VARCHAR NOT NULL DEFAULT 'stall', known_markets INTEGER, compare VARCHAR)""",
    "markets": """(market_key VARCHAR PRIMARY KEY, market_id VARCHAR, name VARCHAR NOT NULL,
        town VARCHAR, province VARCHAR, lat DOUBLE, lon DOUBLE)""",
    "observations": """(survey VARCHAR NOT NULL, market_key VARCHAR NOT NULL,
        year INTEGER NOT NULL, market_id VARCHAR, market VARCHAR NOT NULL, town VARCHAR,
        province VARCHAR, lat DOUBLE, lon DOUBLE, stall_area_m2 DOUBLE, open_area_m2 DOUBLE,
        imagery_date VARCHAR, source VARCHAR, status VARCHAR, notes VARCHAR,
        file VARCHAR NOT NULL, line INTEGER NOT NULL, import_id INTEGER NOT NULL,
        PRIMARY KEY (survey, market_key, year))""",
}


def as_schema_1(db: Path) -> None:
    """Turn a workspace back into schema 1: observations one wide table with a primary key,
    markets and surveys without numbers."""
    with duckdb.connect(str(db)) as con:
        for table in SCHEMA_1:
            con.execute(f"CREATE TEMP TABLE old_{table} AS SELECT * FROM {table}")
        con.execute("DROP VIEW observations")
        for table in ("observed", "details", "spellings", "surveys", "markets"):
            con.execute(f"DROP TABLE {table}")
        for table, columns in SCHEMA_1.items():
            con.execute(f"CREATE TABLE {table} {columns}")
            names = ", ".join(c for c in con.table(table).columns)
            con.execute(f"INSERT INTO {table} SELECT {names} FROM old_{table}")
        con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")


def primary_keys(db: Path) -> list:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(
            "SELECT table_name FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY' "
            "AND table_name = 'observations'"
        ).fetchall()


def test_schema_1_is_read_as_it_is_and_migrated_by_the_next_import(tmp_path, run, run_json):
    db = tmp_path / "ws.duckdb"
    assert run("import", *STALLS[:3], "--db", db, "--survey", "stalls").exit_code == 0
    before = run_json("report", "--db", db)
    as_schema_1(db)
    assert primary_keys(db)
    schema_1 = digest(db)
    status = run("status", "--db", db).stdout
    assert run_json("report", "--db", db) == before
    assert digest(db) == schema_1  # reading never migrates
    assert run("import", *STALLS[3:], "--db", db, "--survey", "stalls").exit_code == 0
    assert not primary_keys(db)
    with duckdb.connect(str(db), read_only=True) as con:
        version = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
    assert version == [("3",)]
    assert run_json("report", "--db", db) == run_json("report", *STALLS, "--survey", "stalls")
    assert "stalls" in status and status.count("stall") >= 2


def test_each_thing_is_stored_once_without_primary_keys(tmp_path, run, monkeypatch):
    db = tmp_path / "ws.duckdb"
    for _ in range(2):
        assert run("import", STALLS[0], "--db", db, "--replace").exit_code == 0
    changed = write(tmp_path / "changed.csv", STALLS[0].read_text().replace(",400,", ",410,", 1))
    assert run("import", changed, "--db", db, "--replace").exit_code == 0
    monkeypatch.setenv("MARKETDELTA_FAST_OBSERVATIONS", "0")  # the fast import, for new markets
    assert run("import", STALLS[1], "--db", db).exit_code == 0
    once = {
        "observations": "survey, market_key, year",
        "markets": "market_key",
        "markets ": "market_no",
        "aliases": "label",
        "spellings": "spelling_no",
        "spellings ": "market_id, market, town",
        "surveys": "survey_no",
    }
    with duckdb.connect(str(db), read_only=True) as con:
        for table, key in once.items():
            twice = con.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM {table} GROUP BY {key} HAVING count(*) > 1)"
            ).fetchall()[0][0]
            assert twice == 0, (table, key)
        rows = con.execute("SELECT count(*) FROM observations").fetchall()[0][0]
    assert rows == sum(len(path.read_text().strip().splitlines()) - 1 for path in STALLS[:2])


def test_not_a_workspace(tmp_path, run):
    other = tmp_path / "other.duckdb"
    with duckdb.connect(str(other)) as con:
        con.execute("CREATE TABLE x (a INTEGER)")
    result = run("report", "--db", other)
    assert result.exit_code == 1 and "not a marketdelta workspace" in result.stderr
    junk = write(tmp_path / "junk.duckdb", "hello")
    result = run("report", "--db", junk)
    assert result.exit_code == 1 and "Traceback" not in result.output


def test_read_only_location(run):
    result = run("import", STALLS[0], "--db", "/proc/marketdelta-test.duckdb")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "/proc/marketdelta-test.duckdb" in result.stderr


def test_missing_workspace_directory(tmp_path, run):
    result = run("import", STALLS[0], "--db", tmp_path / "nowhere" / "ws.duckdb")
    assert result.exit_code == 1
    assert "no such directory" in result.stderr


def _python(code: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )


def test_sigkill_mid_import_keeps_the_earlier_state(tmp_path, run, run_json):
    db = tmp_path / "ws.duckdb"
    run("import", STALLS[0], "--db", db)
    before = run_json("report", "--db", db)
    big = tmp_path / "big.csv"
    rows = "\n".join(f"Big Market #{i},Big Town,2021,{i % 997}" for i in range(20_000))
    big.write_text("market,town,year,stall_area_m2\n" + rows + "\n")
    child = _python(
        f"""
        import sys, time
        from marketdelta.cli import main
        from marketdelta.store import Workspace
        original = Workspace._refresh_markets
        def stall(self, *keys):
            original(self, *keys)
            print("INSIDE", flush=True)
            time.sleep(60)
        Workspace._refresh_markets = stall
        sys.argv = ["marketdelta", "import", {str(big)!r}, "--db", {str(db)!r}]
        main()
        """
    )
    assert child.stdout.readline().strip() == "INSIDE"  # observations written, not committed
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert run_json("report", "--db", db) == before
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM imports").fetchone()[0] == 1


@pytest.mark.parametrize("fast_observations", ["0", str(10**12)], ids=["fast", "reference"])
def test_locked_workspace_waits_then_fails_cleanly(tmp_path, run, monkeypatch, fast_observations):
    monkeypatch.setenv("MARKETDELTA_FAST_OBSERVATIONS", fast_observations)
    db = tmp_path / "ws.duckdb"
    run("import", STALLS[0], "--db", db)
    before = digest(db)
    plain = write(
        tmp_path / "plain.csv", "market,year,stall_area_m2\nA,2020,1\n"
    )  # fast-path shape
    holder = _python(
        f"""
        import duckdb, time
        con = duckdb.connect({str(db)!r})
        print("HOLDING", flush=True)
        time.sleep(30)
        """
    )
    try:
        assert holder.stdout.readline().strip() == "HOLDING"
        os.environ["MARKETDELTA_LOCK_WAIT"] = "0.5"
        started = time.monotonic()
        result = run("import", plain, "--db", db)
        assert time.monotonic() - started >= 0.5
        assert result.exit_code == 1
        assert "in use by another marketdelta command" in result.stderr
    finally:
        os.environ.pop("MARKETDELTA_LOCK_WAIT", None)
        holder.kill()
        holder.wait()
    assert digest(db) == before


def test_an_import_between_the_plan_and_the_write_is_planned_for(
    tmp_path, run, run_json, monkeypatch
):
    """An import plans on the workspace as it reads it, then writes under the lock; should
    another import land in between (here: the same file), it plans again, and nothing is
    counted twice."""
    from marketdelta.store import Workspace, read_import_files
    from marketdelta.survey import ReadOptions

    db = tmp_path / "ws.duckdb"
    assert run("import", STALLS[0], "--db", db).exit_code == 0
    open_workspace = Workspace.open

    def open_after_another_import(path, write=False):
        if write:
            monkeypatch.setattr(Workspace, "open", open_workspace)
            with open_workspace(path, write=True) as other:
                other.apply(other.plan(read_import_files([STALLS[1]], ReadOptions())))
        return open_workspace(path, write)

    monkeypatch.setattr(Workspace, "open", open_after_another_import)
    result = run("import", STALLS[1], "--db", db)
    assert result.exit_code == 0, result.output
    assert run_json("report", "--db", db) == run_json("report", *STALLS[:2])


def test_two_concurrent_imports(tmp_path):
    db = tmp_path / "ws.duckdb"
    children = [
        _python(
            f"""
            import sys
            from marketdelta.cli import main
            sys.argv = ["marketdelta", "import", {str(path)!r}, "--db", {str(db)!r}, "-q"]
            main()
            """,
            MARKETDELTA_LOCK_WAIT="20",
        )
        for path in STALLS[:2]
    ]
    codes = [child.wait(timeout=60) for child in children]
    errors = [child.stderr.read() for child in children]
    assert all(code in (0, 1) for code in codes), errors
    for code, error in zip(codes, errors, strict=True):
        if code == 1:
            assert "in use by another marketdelta command" in error
    expected = sum(
        len(p.read_text().strip().splitlines()) - 1
        for p, c in zip(STALLS, codes, strict=False)
        if c == 0
    )
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM observations").fetchone()[0] == expected
        assert con.execute("SELECT count(*) FROM imports").fetchone()[0] == codes.count(0)
