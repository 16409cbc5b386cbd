"""Panels read from small files, and the data of charts drawn from them, are cached between
runs, keyed on everything that shapes them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import FIXTURES, write

from marketdelta import chartdata, survey


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("MARKETDELTA_CACHE", str(folder))
    return folder


@pytest.fixture
def reads(monkeypatch):
    """How many times the files were read and checked."""
    calls = []
    real = survey.read_surveys

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(survey, "read_surveys", counted)
    monkeypatch.setattr("marketdelta.sources.read_surveys", counted)
    return calls


def test_second_report_comes_from_the_cache_and_is_the_same(cache, reads, run_json):
    files = [FIXTURES / "long-2020.csv", FIXTURES / "long-2022.csv"]
    first = run_json("report", *files)
    second = run_json("report", *files)
    assert second == first
    assert len(reads) == 1
    assert len(list(cache.glob("*.arrow"))) == 1


def test_the_demo_is_cached_too(cache, reads, run_json):
    first = run_json("report")
    assert run_json("report") == first
    assert len(reads) == 2  # its two surveys, read once


def test_a_changed_file_or_option_is_read_again(cache, reads, run_json, tmp_path):
    path = write(tmp_path / "s.csv", "market,year,stall_area_m2\nA,2020,100\nA,2022,150\n")
    assert run_json("report", path)["net_m2"] == 50
    write(path, "market,year,stall_area_m2\nA,2020,100\nA,2022,170\n")
    assert run_json("report", path)["net_m2"] == 70
    assert run_json("report", path, "--survey", "other")["survey"] == "other"
    assert len(reads) == 3


def test_bad_files_are_never_cached(cache, run, tmp_path):
    path = write(tmp_path / "bad.csv", "market,year,stall_area_m2\nA,2020,-5\n")
    for _ in range(2):
        result = run("report", path)
        assert result.exit_code == 1
        assert "cannot be negative" in result.output
    assert not list(cache.glob("*.arrow"))


def test_a_damaged_entry_is_ignored_and_replaced(cache, reads, run_json):
    first = run_json("report", FIXTURES / "long-2020.csv")
    (entry,) = cache.glob("*.arrow")
    entry.write_bytes(b"not an arrow file")
    assert run_json("report", FIXTURES / "long-2020.csv") == first
    assert len(reads) == 2


def test_a_folder_named_as_a_file_is_explained_with_the_cache_on(cache, run, tmp_path):
    for command in ("report", "chart"):
        result = run(command, FIXTURES)
        assert result.exit_code == 1  # it raised IsADirectoryError while making the cache key
        assert "this is a directory, not a CSV file" in result.stderr


def test_an_unusable_cache_folder_is_not_an_error(tmp_path, monkeypatch, run_json):
    blocker = write(tmp_path / "file", "")
    monkeypatch.setenv("MARKETDELTA_CACHE", str(blocker / "cache"))  # under a file
    assert run_json("report", FIXTURES / "long-2020.csv")["markets"] > 0


@pytest.fixture
def charted(monkeypatch):
    """How many times a chart's data was taken from a report."""
    calls = []
    real = chartdata.chart_data

    def counted(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(chartdata, "chart_data", counted)
    return calls


WARM_CHART = """
import sys
from marketdelta.cli import main
sys.argv = ["marketdelta", "chart", "--dpi", "50", "--out", sys.argv[1]]
try:
    main()
except SystemExit as exit:
    assert not exit.code, exit.code
print("PANDAS:", "pandas" in sys.modules)
"""


def test_a_chart_drawn_again_is_the_same_file_and_needs_no_pandas(cache, charted, run, tmp_path):
    first = run("chart", "--dpi", "50", "--out", tmp_path / "first.png")
    assert first.exit_code == 0, first.output
    assert "bundled demo data" in first.stderr
    assert charted == ["series"]
    assert len(list(cache.glob("*.json"))) == 1
    again = subprocess.run(
        [sys.executable, "-c", WARM_CHART, str(tmp_path / "again.png")],
        capture_output=True,
        text=True,
        env={**os.environ},
    )
    assert again.returncode == 0, again.stderr
    assert "PANDAS: False" in again.stdout
    assert again.stderr == first.stderr  # the report's notices, said again
    assert (tmp_path / "again.png").read_bytes() == (tmp_path / "first.png").read_bytes()


def test_a_changed_file_kind_or_option_charts_again(cache, charted, run, tmp_path):
    path = write(tmp_path / "s.csv", "market,year,stall_area_m2\nA,2020,100\nA,2022,150\n")
    for args in [
        ("series", path),
        ("series", path),  # from the cache
        ("contributors", path),
        ("contributors", path, "--bars", "3"),
        ("contributors", path, "--from", "2021"),
    ]:
        assert run("chart", *args, "--out", tmp_path / "c.svg", "-q").exit_code == 0
    write(path, "market,year,stall_area_m2\nA,2020,100\nA,2022,170\n")
    assert run("chart", "series", path, "--out", tmp_path / "c.svg", "-q").exit_code == 0
    assert charted == ["series", "contributors", "contributors", "contributors", "series"]


def test_a_damaged_chart_entry_is_ignored_and_replaced(cache, charted, run, tmp_path):
    path = FIXTURES / "long-2020.csv"
    assert run("chart", "map", path, "--out", tmp_path / "a.png", "-q").exit_code == 0
    (entry,) = cache.glob("*.json")
    entry.write_text('{"kind": "map", "chart": {"title": 1}, "notices": []}')
    assert run("chart", "map", path, "--out", tmp_path / "b.png", "-q").exit_code == 0
    assert charted == ["map", "map"]
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_charts_of_a_workspace_are_not_cached(cache, charted, run, tmp_path):
    db = tmp_path / "w.duckdb"
    assert run("import", FIXTURES / "long-2020.csv", "--db", db, "-q").exit_code == 0
    for _ in range(2):
        assert run("chart", "--db", db, "--out", tmp_path / "w.png", "-q").exit_code == 0
    assert charted == ["series", "series"]
    assert not list(cache.glob("*.json"))
