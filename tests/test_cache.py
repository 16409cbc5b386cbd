"""Panels read from small files are cached between runs, keyed on everything that shapes them."""

from __future__ import annotations

import pytest
from conftest import FIXTURES, write

from marketdelta import survey


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


def test_an_unusable_cache_folder_is_not_an_error(tmp_path, monkeypatch, run_json):
    blocker = write(tmp_path / "file", "")
    monkeypatch.setenv("MARKETDELTA_CACHE", str(blocker / "cache"))  # under a file
    assert run_json("report", FIXTURES / "long-2020.csv")["markets"] > 0
