"""The DuckDB fast path gives exactly the reference path's report, or declines."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from conftest import FIXTURES, write
from hypothesis import given
from hypothesis import strategies as st

from marketdelta import fastpath, fastread
from marketdelta.errors import MarketdeltaError
from marketdelta.fastread import FAST_OBSERVATIONS_ENV, reading_early, start_reading
from marketdelta.report import ReportOptions, build_report
from marketdelta.sources import read_files
from marketdelta.survey import ReadOptions

BENCH = Path(__file__).parents[1] / "bench"


def both(paths, read=None, **options):
    read = read or ReadOptions()
    opts = ReportOptions(**options)
    fast = fastpath.report_from_files(paths, read, opts)
    assert fast is not None, "the fast path declined"
    return fast.to_dict(), build_report(read_files(paths, read), opts).to_dict()


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    path = tmp_path_factory.mktemp("panel") / "panel.csv"
    subprocess.run(
        [sys.executable, str(BENCH / "gen_panel.py"), "--markets", "300", "--out", str(path)],
        check=True,
    )
    return path


@pytest.mark.parametrize(
    "options",
    [{}, {"min_change": 50}, {"start": 2014, "end": 2020, "top": 7, "by": "town"}, {"end": 2012}],
)
def test_generated_panel(generated, options):
    fast, reference = both([generated], **options)
    assert fast == reference


def test_hand_made_files():
    fast, reference = both([FIXTURES / "long-2020.csv", FIXTURES / "long-2022.csv"])
    assert fast == reference


@pytest.fixture(scope="module")
def generated_wide(tmp_path_factory):
    path = tmp_path_factory.mktemp("panel") / "wide.csv"
    subprocess.run(
        [sys.executable, str(BENCH / "gen_panel.py"), "--markets", "300", "--out", str(path),
         "--wide"],
        check=True,
    )  # fmt: skip
    return path


@pytest.mark.parametrize("options", [{}, {"min_change": 50}, {"start": 2014, "end": 2020}])
def test_generated_wide_panel(generated_wide, generated, options):
    """A wide file's rows are read as one row per year, blank cells too, as the reference
    reader melts them: the same report, and the same as the long file of the same panel."""
    fast, reference = both([generated_wide], **options)
    assert fast == reference
    assert fast == both([generated], **options)[0]


def test_wide_and_long_files_together(tmp_path):
    wide = write(tmp_path / "w.csv", "market,town,2020,2021,notes\nA,T,100,,x\nB,T,,5,\n")
    fast, reference = both([wide, FIXTURES / "long-2022.csv"])
    assert fast == reference
    assert fast["markets"] > 2


def test_years_over_a_long_span(tmp_path):
    data = write(
        tmp_path / "y.csv",
        "market,year,stall_area_m2\nA,1960,1\nA,2025,2\nB,1990,5\nB,2020,0\nC,2025,7\n",
    )
    fast, reference = both([data])
    assert fast == reference


def test_messy_but_valid_file(tmp_path):
    data = write(
        tmp_path / "m.csv",
        " Market ,Town,Year,Stall Area M2,Status,Open_Area_m2,Extra\n"
        'A,T,2020,"1,200",open,10,x\nA,T,2022,1300,,,\n'
        "Hadang Market #2,P,2020,100,,,\nHadang Market #3,P,2020,90,,,\n"
        "Hadang Market #2,P,2022,150,,,\nHadang Market #3,P,2022,80,,,\n"
        "Nampo-Waudo,N,2020,600,,,\nNampo-Wadu,N,2024,,closed,,\nB,T,2024,,,,\n"
        "hadang market #2 , p ,2024,170,,,\n",  # rule 2: the same market, spelt otherwise
    )
    for measure in ("stall", "open", "total"):
        fast, reference = both([data], measure=measure)
        assert fast == reference
    report = fastpath.report_from_files([data], ReadOptions(), ReportOptions())
    assert any("Wadu" in n for n in report.notices)  # the fuzzy merge, found in SQL too


@pytest.mark.parametrize(
    "text",
    [
        "market,year,stall_area_m2\nA,2020,-1\n",  # a bad cell
        "market,year,stall_area_m2\nA,2020,1\nA,2020,2\n",  # a market twice in a year
        "market,year,stall_area_m2\nA,1960,1\nA,2025,2\nA,2025,3\n",  # ... over 64 years
        'market,year,stall_area_m2,coordinates\nA,2020,1,"39.1, 125.1"\n',  # unusual column
        "market,year,2020\nA,2020,2\n",  # both layouts
        "market,2020,y2021\nA,1,2\n",  # a wide file's column that looks like a year
        "market,1950,2020\nA,1,2\n",  # ... and a year before 1960
        "market,2020,\u0662\u0660\u0662\u0661\nA,1,2\n",  # ... and one in other digits
        "market,year,stall_area_m2\nCafé,2020,1\n",  # non-ASCII name
        "market,year,stall_area_m2\nA\x1f,2020,1\nA,2021,2\n",  # Python strips \x1f as a space
        "market,town,year,stall_area_m2\nA,T\x01,2020,1\n",  # any control character
        "market,province,year,stall_area_m2\nA,P\t,2020,1\nB,P,2020,2\n",  # Python strips the tab
        "market,year,stall_area_m2,notes\nA,2020,1,\u3000x\n",  # ... and a wide space
    ],
)
def test_declines_what_it_does_not_handle(tmp_path, text):
    path = write(tmp_path / "x.csv", text)
    assert fastpath.report_from_files([path], ReadOptions(), ReportOptions()) is None


@pytest.mark.parametrize(
    ("year", "area"),
    [
        ("1800", "10"),  # written as DuckDB writes the year back, but not a survey year
        ("2020.0", "10"),
        ("+2020", "10"),
        ("2020", "9e2"),
        ("2020", "1_000"),
        ("2020", "900."),
        ("2020", "inf"),
        ("2020", "nan"),
        ("2020", "0x10"),
        ("2020", "99999999999"),  # written back the same way, but larger than any market
        ("2020", "-5"),
    ],
)
def test_cells_duckdb_reads_but_the_reference_refuses_are_declined(tmp_path, year, area):
    """Most cells are not kept as text (`fastread.AS_WRITTEN`); the refused ones still are, or
    are given back from their value."""
    path = write(
        tmp_path / "x.csv",
        f"market,year,stall_area_m2\nA,2021,10\nB,2021,20\nA,{year},{area}\n",
    )
    assert fastpath.report_from_files([path], ReadOptions(), ReportOptions()) is None


def test_a_year_given_for_blank_cells_reads_as_on_the_reference_path(tmp_path):
    data = write(tmp_path / "g.csv", "market,year,stall_area_m2\nA,,10\nB,2021,20\nA,2022,15\n")
    fast, reference = both([data], ReadOptions(year=2020))
    assert fast == reference


def test_pairs_that_share_a_hash_are_declined(tmp_path, run, monkeypatch):
    """Two (market, town) pairs with one hash would be one market to every step after the
    grouping: the fast report and import leave such files to the reference path."""
    monkeypatch.setattr(fastread, "PAIR_HASH", "hash(length(market))")  # A and B collide
    text = "market,town,year,stall_area_m2\nA,T,2020,10\nB,T,2020,20\nA,T,2022,15\n"
    path = write(tmp_path / "x.csv", text)
    assert fastpath.report_from_files([path], ReadOptions(), ReportOptions()) is None
    monkeypatch.setenv(FAST_OBSERVATIONS_ENV, "0")
    report = run("report", path, "--format", "json")
    assert json.loads(report.stdout)["markets"] == 2
    db = tmp_path / "ws.duckdb"
    assert run("import", path, "--db", db).exit_code == 0
    assert _table(db, "SELECT count(*) FROM markets") == [(2,)]


def test_a_file_without_rows_is_explained_among_others(tmp_path, run, monkeypatch):
    """The reference reader refuses a file of a header only; the fast path took it, when
    another file had rows, before the fourteenth session."""
    monkeypatch.setenv(FAST_OBSERVATIONS_ENV, "0")
    empty = write(tmp_path / "empty.csv", "market,town,year,stall_area_m2\n")
    wide = write(tmp_path / "wide.csv", "market,2020\n")
    rows = write(tmp_path / "rows.csv", "market,town,year,stall_area_m2\nS 1,T,2020,5\n")
    for files in ([empty, rows], [rows, wide], [empty]):
        db = tmp_path / "ws.duckdb"
        for command in (["report", *files], ["import", *files, "--db", db]):
            result = run(*command)
            assert result.exit_code == 1
            assert "file has a header but no data rows" in result.stderr
        assert not db.exists()


def test_cli_uses_it_for_large_inputs_and_explains_bad_ones(tmp_path, run, monkeypatch):
    monkeypatch.setenv(FAST_OBSERVATIONS_ENV, "0")
    good = FIXTURES / "long-2020.csv"
    assert run("report", good, FIXTURES / "long-2022.csv", "--format", "json").exit_code == 0
    bad = write(tmp_path / "bad.csv", "market,year,stall_area_m2\nA,2020,1\nB,2020,x\n")
    result = run("report", bad)
    assert result.exit_code == 1
    assert f"{bad}:3: column 'stall_area_m2': value 'x' — not a number" in result.stderr
    wide = write(tmp_path / "wide.csv", "market,2020,2021\nA,1,2\nB,3,1oo\n")
    db = tmp_path / "ws.duckdb"
    for command in (["report", wide], ["import", wide, "--db", db]):
        result = run(*command)
        assert result.exit_code == 1
        assert f"{wide}:3: column '2021': value '1oo' — not a number" in result.stderr
    assert not db.exists()


def test_the_threshold_counts_observations_not_bytes(tmp_path, generated, generated_wide):
    """A wide file holds five to six times as many observations per byte as a long one: the
    fast path is wanted for as many observations whatever the layout."""
    years = ",".join(str(y) for y in range(2011, 2026))
    cells = ",".join(["120"] * 15)
    wide = write(
        tmp_path / "wide.csv",
        f"market,town,{years}\n" + "".join(f"M{i},T{i % 7},{cells}\n" for i in range(2_400)),
    )
    long = write(
        tmp_path / "long.csv",
        "market,town,year,stall_area_m2\n"
        + "".join(f"Market number {i},Town {i % 7},2020,120\n" for i in range(2_900)),
    )
    assert wide.stat().st_size > long.stat().st_size > 1 << 16  # beyond the sampled bytes
    assert fastread.estimated_observations(wide) == pytest.approx(36_000, rel=0.02)
    assert fastread.estimated_observations(long) == pytest.approx(2_900, rel=0.02)
    assert fastread.fast_path_wanted([wide]) and not fastread.fast_path_wanted([long])
    assert fastread.estimated_observations(generated_wide) == 300 * 15  # all sampled: counted
    lines = len(generated.read_text().splitlines()) - 1
    assert fastread.estimated_observations(generated) == pytest.approx(lines, rel=0.02)
    small = [
        ("market,year,stall_area_m2\r\nA,2020,1\r\nB,2020,2", 2),
        ("market,2020,2021\n", 0),
        ("market,2020,2021\nA,1,2\nB,3,4", 4),
    ]
    for text, count in small:
        assert fastread.estimated_observations(write(tmp_path / "small.csv", text)) == count


def test_a_threshold_that_is_not_a_number_is_explained(tmp_path, run, monkeypatch):
    monkeypatch.setenv(FAST_OBSERVATIONS_ENV, "1e5")
    db = tmp_path / "ws.duckdb"
    for command in (["report", FIXTURES / "long-2020.csv"], ["import", FIXTURES / "long-2020.csv",
                    "--db", db]):  # fmt: skip
        result = run(*command)
        assert result.exit_code == 1
        assert f"{FAST_OBSERVATIONS_ENV}='1e5': give a number of observations" in result.stderr
    assert not db.exists()


def test_duckdb_takes_as_many_cores_as_it_is_given(tmp_path, run_json, run, monkeypatch):
    from marketdelta.engine import quiet_connection

    monkeypatch.setenv(FAST_OBSERVATIONS_ENV, "0")
    files = [FIXTURES / "long-2020.csv", FIXTURES / "long-2022.csv"]
    everything = run_json("report", *files)
    monkeypatch.setenv("MARKETDELTA_THREADS", "1")
    assert quiet_connection().execute("SELECT current_setting('threads')").fetchall() == [(1,)]
    assert run_json("report", *files) == everything
    monkeypatch.setenv("MARKETDELTA_THREADS", "all")
    result = run("report", *files)
    assert result.exit_code == 1
    assert "MARKETDELTA_THREADS='all': give a number of cores" in result.stderr


def test_a_report_reads_early_and_closes_the_read(generated, monkeypatch):
    """`reading_early` starts the read before pandas is imported: the same report, and the
    connection closed once the report is done."""
    read, options = ReadOptions(), ReportOptions()
    with reading_early([generated], None) as reading:
        assert reading is None  # 4,000 observations: under the fast path's threshold
    monkeypatch.setenv(FAST_OBSERVATIONS_ENV, "0")
    with reading_early([generated], None, compare="other") as reading:
        assert reading is None  # comparisons take the reference path
    with reading_early([generated], None) as reading:
        early = fastpath.report_from_files([generated], read, options, reading)
    assert early is not None
    assert early.to_dict() == fastpath.report_from_files([generated], read, options).to_dict()
    with pytest.raises(duckdb.ConnectionException):
        reading.connection.execute("SELECT 1")


def test_a_read_left_unused_is_stopped_and_closed(generated):
    reading = start_reading([generated], None)
    reading.close()
    with pytest.raises(duckdb.ConnectionException):
        reading.connection.execute("SELECT 1")


def test_a_file_duckdb_cannot_read_is_explained_by_the_reference_reader(tmp_path, run, monkeypatch):
    monkeypatch.setenv(FAST_OBSERVATIONS_ENV, "0")
    bad = write(tmp_path / "bad.csv", 'market,year,stall_area_m2\nA,2020,1\n"B,2020,2\n')
    with reading_early([bad], None) as reading:
        assert fastpath.report_from_files([bad], ReadOptions(), ReportOptions(), reading) is None
    result = run("report", bad)
    assert result.exit_code == 1
    assert "unmatched double quote" in result.stderr
    fresh = tmp_path / "new.duckdb"
    result = run("import", bad, "--db", fresh)  # read while pandas imports, then declined
    assert result.exit_code == 1
    assert "unmatched double quote" in result.stderr
    assert not fresh.exists()


def test_a_file_named_like_a_pattern_is_read_as_named(tmp_path, run, run_json, monkeypatch):
    """DuckDB reads `a[1].csv` as a pattern, which matches `a1.csv`: the fast path leaves
    such names to the reference reader (before, it reported `a1.csv`)."""
    monkeypatch.setenv(FAST_OBSERVATIONS_ENV, "0")
    named = write(tmp_path / "a[1].csv", "market,year,stall_area_m2\nA,2020,100\nA,2021,150\n")
    write(tmp_path / "a1.csv", "market,year,stall_area_m2\nA,2020,100\nA,2021,999\n")
    assert run_json("report", named)["net_m2"] == 50
    db = tmp_path / "ws.duckdb"
    assert run("import", named, "--db", db).exit_code == 0
    assert run_json("report", "--db", db)["net_m2"] == 50


def _table(db: Path, sql: str) -> list:
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.fixture(scope="module")
def generated_workspace(tmp_path_factory, generated):
    from typer.testing import CliRunner

    from marketdelta.cli import app

    db = tmp_path_factory.mktemp("ws") / "ws.duckdb"
    result = CliRunner().invoke(app, ["import", str(generated), "--db", str(db)])
    assert result.exit_code == 0, result.output
    return db


@pytest.mark.parametrize(
    "period", [[], ["--from", "2011"], ["--from", "2014", "--to", "2020"], ["--from", "2024"]]
)
def test_workspace_annual_series_equals_the_reference(generated, generated_workspace, run_json,
                                                      period):  # fmt: skip
    """A workspace's annual series comes from numpy over each market's years (not the SQL
    window): the same series as the reference path, over any period."""
    from_workspace = run_json("report", "--db", generated_workspace, *period)
    assert from_workspace == run_json("report", generated, *period)
    assert len(from_workspace["annual"]) >= 1


def test_fast_import_stores_what_the_reference_import_stores(tmp_path, run, monkeypatch, generated):
    fast_db, slow_db = tmp_path / "fast.duckdb", tmp_path / "slow.duckdb"
    args = ["--survey", "panel", "--known-markets", "400"]
    _import_both(run, monkeypatch, [generated], fast_db, slow_db, *args)
    _same_workspaces(run, fast_db, slow_db)


def test_fast_import_of_messy_files_into_a_workspace_that_has_markets(tmp_path, run, monkeypatch):
    fast_db, slow_db = tmp_path / "fast.duckdb", tmp_path / "slow.duckdb"
    first = write(
        tmp_path / "first.csv",
        "market,town,province,lat,lon,year,stall_area_m2,status,source,notes\n"
        "Market 1,T, P ,39.1,125.1,2020,100,open, survey ,\n"
        "market 1 ,T,P,,,2021,120,,,\n"
        "Stalls 2,T,,,,2020,50,,,late\n"
        "Stalls 2,T,,,,2021,,closed,,\n",
    )
    second = write(
        tmp_path / "second.csv",
        "market;town;year;stall_area_m2;open_area_m2\nMARKET 1;t;2022;1,300;5\nC;U;2022;70;\n",
    )
    _import_both(run, monkeypatch, [first], fast_db, slow_db)
    _import_both(run, monkeypatch, [second], fast_db, slow_db)
    _same_workspaces(run, fast_db, slow_db)


def test_fast_import_of_several_files_numbers_markets_as_the_reference_does(
    tmp_path, run, monkeypatch
):
    """Markets, spellings and aliases numbered in the order first seen, across the files of
    one import (each alias with the import of the file that first brought it)."""
    fast_db, slow_db = tmp_path / "fast.duckdb", tmp_path / "slow.duckdb"
    header = "market,town,year,stall_area_m2\n"
    first = write(tmp_path / "a.csv", header + "Stall 2,T,2020,5\nStall 1,T,2020,1\n")
    second = write(tmp_path / "b.csv", header + "Stall 3,T,2021,7\nStall 1,T,2021,2\n")
    _import_both(run, monkeypatch, [first, second], fast_db, slow_db)
    _same_workspaces(run, fast_db, slow_db)
    numbers = (
        "SELECT m.name, m.market_no, a.import_id FROM markets m JOIN aliases a USING (market_key)"
    )
    assert sorted(_table(fast_db, numbers)) == [
        ("Stall 1", 2, 1),
        ("Stall 2", 1, 1),
        ("Stall 3", 3, 2),
    ]


def test_fast_import_of_wide_files_stores_what_the_reference_import_stores(
    tmp_path, run, monkeypatch, generated_wide
):
    """Each of a wide row's years is an observation (a blank cell too) on the row's line;
    markets are numbered in the order of the rows, across wide and long files."""
    fast_db, slow_db = tmp_path / "fast.duckdb", tmp_path / "slow.duckdb"
    _import_both(run, monkeypatch, [generated_wide], fast_db, slow_db)
    _same_workspaces(run, fast_db, slow_db)
    fast_db, slow_db = tmp_path / "fast2.duckdb", tmp_path / "slow2.duckdb"
    files = [
        write(
            tmp_path / "a.csv", "market,town,2020,2021,notes\nS 2,T,5,,x\nS 1,T,,6,\nS 3,U,1,2,\n"
        ),
        write(tmp_path / "b.csv", "market,town,year,stall_area_m2\nS 4,T,2022,4\nS 1,T,2022,7\n"),
        write(tmp_path / "c.csv", "market;town;2023;2024\nS 5;T;1;\nS 2;T;3;4\n"),
    ]
    _import_both(run, monkeypatch, files, fast_db, slow_db)
    _same_workspaces(run, fast_db, slow_db)
    lines = "SELECT market, year, line FROM observations WHERE file LIKE '%a.csv' ORDER BY ALL"
    assert _table(fast_db, lines)[:3] == [("S 1", 2020, 3), ("S 1", 2021, 3), ("S 2", 2020, 2)]


def _import_both(run, monkeypatch, files, fast_db, slow_db, *args):
    """Import with the fast path (and check it was taken), then with the reference import."""
    monkeypatch.setenv(FAST_OBSERVATIONS_ENV, "0")

    def refuse(*_):
        raise AssertionError("the fast import declined")

    with monkeypatch.context() as patched:
        patched.setattr("marketdelta.store.read_import_files", refuse)
        result = run("import", *files, "--db", fast_db, *args)
    assert result.exit_code == 0, result.output
    monkeypatch.setenv(FAST_OBSERVATIONS_ENV, str(10**12))
    assert run("import", *files, "--db", slow_db, *args).exit_code == 0


def _same_workspaces(run, fast_db, slow_db):
    columns = (
        "survey, market_key, year, market, town, province, lat, lon, stall_area_m2, "
        "open_area_m2, source, status, notes, file, line"
    )
    query = f"SELECT {columns} FROM observations ORDER BY market_key, year"
    assert _table(fast_db, query) == _table(slow_db, query)
    for sql in (
        "SELECT label, market_key, spelling, import_id FROM aliases ORDER BY label",
        "SELECT * FROM markets ORDER BY market_key",
        "SELECT * FROM spellings ORDER BY spelling_no",
        "SELECT * FROM details ORDER BY survey_no, market_no, year",
        "SELECT file, sha256, rows, added, survey FROM imports",
        "SELECT * FROM surveys",
    ):
        assert _table(fast_db, sql) == _table(slow_db, sql)
    reports = [run("report", "--db", db, "--format", "json").stdout for db in (fast_db, slow_db)]
    assert reports[0] == reports[1]


def test_fast_import_leaves_hard_cases_to_the_reference(tmp_path, run, monkeypatch):
    monkeypatch.setenv(FAST_OBSERVATIONS_ENV, "0")
    db = tmp_path / "ws.duckdb"
    first = write(tmp_path / "a.csv", "market,town,year,stall_area_m2\nNampo-Waudo,N,2020,600\n")
    later = write(tmp_path / "b.csv", "market,town,year,stall_area_m2\nNampo-Wadu,N,2024,0\n")
    assert run("import", first, "--db", db).exit_code == 0
    merged = run("import", later, "--db", db)
    assert "taken to be 'Nampo-Waudo'" in merged.stderr  # a fuzzy partner: reference import
    assert "already imported" in run("import", later, "--db", db).stderr
    both = write(tmp_path / "c.csv", "market,town,year,stall_area_m2\nNampo-Waudo,N,2020,600\n"
                 "Nampo-Wadu,N,2024,0\nB,N,2020,5\n")  # fmt: skip
    together = run("import", both, "--db", tmp_path / "both.duckdb")
    assert "taken to be 'Nampo-Waudo'" in together.stderr  # partners in one new file
    bad = write(tmp_path / "bad.csv", "market,year,stall_area_m2\nA,2020,x\n")
    fresh = tmp_path / "new.duckdb"
    assert run("import", bad, "--db", fresh).exit_code == 1
    assert not fresh.exists()


def test_near_spellings_on_the_map_are_merged_on_both_paths(tmp_path):
    data = write(
        tmp_path / "geo.csv",
        "market,town,lat,lon,year,stall_area_m2\n"
        "Chongro Market,A,39.00000,125.00000,2020,100\n"
        "Chongro Markt,B,39.00150,125.00100,2023,140\n"
        "Far Market,C,39.10000,125.10000,2020,10\n"
        "Far Markett,D,39.20000,125.20000,2023,10\n",
    )
    fast, reference = both([data])
    assert fast == reference
    assert fast["markets"] == 3  # the first pair is within 250 m; the second is not


names = st.sampled_from(
    ["Market 1", "market 1 ", "MARKET  1", "Stalls 2", "Hadang #3", "Hadang #4"]
)
towns = st.sampled_from(["", "T", " t", "U"])
cells = st.one_of(
    st.none(), st.integers(0, 3000).map(str), st.sampled_from(["1,200", " 80 ", "0", "12.5"])
)
statuses = st.sampled_from(["", "", "", "open", "closed", " Closed "])
rows = st.tuples(names, towns, st.sampled_from([2019, 2020, 2022, 2024]), cells, statuses)


periods = st.sampled_from(
    [{}, {"start": 2019}, {"start": 2020, "end": 2022}, {"end": 2020}, {"start": 2022}]
)


@given(st.lists(rows, min_size=1, max_size=12), st.sampled_from(["stall", "total"]), periods)
def test_random_messy_files_give_the_reference_report_or_are_declined(
    tmp_path_factory, data, how, period
):
    """Spellings that differ in case and spaces, blanks, separators, statuses, gaps, periods:
    whatever the fast path accepts, it reports exactly as the reference path does."""
    lines = ["market,town,year,stall_area_m2,open_area_m2,status"]
    for market, town, year, area, status in data:
        closed = status.strip().lower() == "closed"
        stall = "" if area is None or (closed and area not in ("0", None)) else area
        lines.append(f'{market},{town},{year},"{stall}",{"" if closed else "5"},{status}')
    path = tmp_path_factory.mktemp("random") / "s.csv"
    path.write_text("\n".join(lines) + "\n")
    _assert_reference_report_or_declined(path, ReportOptions(measure=how, **period))


@given(
    st.lists(st.tuples(names, towns, st.lists(cells, min_size=3, max_size=3)), min_size=1,
             max_size=8),
    periods,
)  # fmt: skip
def test_random_wide_files_give_the_reference_report_or_are_declined(
    tmp_path_factory, data, period
):
    lines = ["market,town,2020,2022,2024"]
    quoted = (",".join(f'"{c}"' if c else "" for c in row) for _, _, row in data)
    lines += [f"{m},{t},{cells}" for (m, t, _), cells in zip(data, quoted, strict=True)]
    path = tmp_path_factory.mktemp("random") / "w.csv"
    path.write_text("\n".join(lines) + "\n")
    _assert_reference_report_or_declined(path, ReportOptions(**period))


SHAPED = "market,town,year,stall_area_m2\nA,T,2020,100\nB,T,2020,200\nA,T,2022,150\nB,T,2022,\n"


@pytest.mark.parametrize(
    "data",
    [
        ("\ufeff" + SHAPED).encode(),  # a byte-order mark
        SHAPED.replace("\n", "\r\n").encode(),
        SHAPED.replace("\n", "\r").encode(),  # old Mac line ends
        SHAPED.replace("2020,200\n", "2020,200\r\n").encode(),  # mixed line ends
        SHAPED.replace("\nB,T,2020", "\n\nB,T,2020").encode(),  # a blank line
        (SHAPED + "\n\n").encode(),
        SHAPED.rstrip("\n").encode(),  # no line break at the end
        SHAPED.replace(",", ";").encode(),
        SHAPED.replace(",", "\t").encode(),
        SHAPED.replace("A,T,2020,100", "A,T,2020").encode(),  # a short row
        SHAPED.replace("A,T,2020,100", "A,T,2020,100,9").encode(),  # a long row
        SHAPED.replace("A,", '"A\nX",').encode(),  # a line break inside quotes
        SHAPED.replace("A,", '"A ""x""",').encode(),  # an escaped quote
        SHAPED.replace("A,T,2020,100", '"A,T,2020,100').encode(),  # an unclosed quote
        SHAPED.replace("B,", "Caf\xe9,").encode("latin-1"),
    ],
)
def test_file_shapes_give_the_reference_report_or_are_declined(tmp_path, data):
    """The fast reader is told the header, delimiter and quoting instead of sniffing them:
    whatever shape of file it still accepts, it reads as the reference reader does."""
    path = tmp_path / "shaped.csv"
    path.write_bytes(data)
    _assert_reference_report_or_declined(path, ReportOptions())


def _assert_reference_report_or_declined(path: Path, options: ReportOptions) -> None:
    """The fast path declines the file, or gives what the reference path gives: the same
    report, or the same error."""
    fast = _outcome(lambda: fastpath.report_from_files([path], ReadOptions(), options))
    if fast == ("report", None):
        return  # declined: the reference path decides
    reference = _outcome(lambda: build_report(read_files([path], ReadOptions()), options))
    if fast[0] == "report":
        fast = ("report", fast[1].to_dict())
        reference = ("report", reference[1].to_dict()) if reference[0] == "report" else reference
    assert fast == reference


def _outcome(compute):
    """("report", what `compute` returned) or ("error", its message)."""
    try:
        return "report", compute()
    except MarketdeltaError as error:
        return "error", str(error)


@pytest.mark.parametrize(
    ("text", "rows", "one_line_a_row"),
    [
        ("h\na\nb\n", 2, True),
        ("h\r\na\r\nb\r\n", 2, True),
        ("h\na\n\nb\n", 2, False),  # a blank line, which readers skip
        ('h\n"a\nx"\nb\n', 2, False),  # a line break inside quotes
        ("h\na\rb\n\n", 2, False),  # a lone carriage return and a blank line: breaks = rows + 1
        ("h\na\nb", 2, False),  # no line break at the end
    ],
)
def test_a_fast_import_stores_lines_only_when_each_row_is_one(tmp_path, text, rows, one_line_a_row):
    path = tmp_path / "f.csv"
    path.write_bytes(text.encode())
    for block_size in (1, 2, 3, 1 << 22):  # small blocks split every pair of characters
        read = fastpath._read_bytes(path, block_size)
        assert read.one_line_a_row(rows) is one_line_a_row
        assert read.sha256 == hashlib.sha256(text.encode()).hexdigest()


def test_rule_3_candidates_are_flagged_whenever_their_numbers_agree():
    """The candidate flag compares all the digits of two names; it must flag every pair
    whose numbers (as rule 3 reads them) are equal, however the digits are written."""
    from marketdelta.fastpath import _with_candidate_flag
    from marketdelta.identity import normalise_name

    names = ["Market 1-2", "Market 12", "Market 1 3", "Market 13", "Sinuiju #4", "Sinuiju 4",
             "Market 7", "Other 8"]  # fmt: skip
    con = duckdb.connect()
    con.register("frame", pd.DataFrame({"market": names, "town": "T", "lat": None, "lon": None}))
    con.execute("CREATE TEMP TABLE groups AS SELECT * FROM frame")  # a table, as in `keys`
    flagged = con.execute(
        f"SELECT market, numbers, candidate FROM ({_with_candidate_flag('groups', False)})"
    ).df()
    numbers = flagged["numbers"].map(tuple)
    keys = normalise_name(pd.Series(names)).str.replace(r"[^\w#]", "", regex=True)
    reference = {
        name: tuple(re.findall(r"\d+", key)) for name, key in zip(names, keys, strict=True)
    }
    assert dict(zip(flagged["market"], numbers, strict=True)) == reference
    shared = numbers.map(numbers.value_counts()) > 1
    assert (flagged["candidate"] | ~shared).all()  # over-inclusive, never under
    assert set(flagged.loc[flagged["candidate"], "market"]) >= {"Market 1-2", "Market 12"}
    assert not flagged.set_index("market").loc[["Market 7", "Other 8"], "candidate"].any()
