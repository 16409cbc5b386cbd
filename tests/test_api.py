"""The notebook API, the README's notebook example run as written, and the JSON and CSV
writers checked against plain definitions."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import write

import marketdelta as md
from marketdelta.errors import InputError

README = Path(__file__).parents[1] / "README.md"


def test_readme_notebook_example_runs(tmp_path, monkeypatch):
    text = README.read_text()
    block = re.search(r"<!-- notebook-example -->\s*```python\n(.*?)```", text, re.S)
    assert block, "README has no notebook example"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block.group(1), "README.md", "exec"), namespace)
    assert namespace["result"].to_dict()["net_m2"] == 9905
    assert (tmp_path / "series.png").exists()


def test_api_on_files_matches_the_cli(run_json):
    from conftest import FIXTURES

    files = [FIXTURES / "long-2020.csv", FIXTURES / "long-2022.csv"]
    tidy = md.read_surveys(files)
    assert list(tidy.columns[:3]) == ["survey", "market_id", "market"]
    result = md.build_report(md.read(files), min_change=10)
    assert result.to_dict() == run_json("report", *files, "--min-change", "10")
    assert len(result.to_frame()) == 3


def test_api_import_of_the_demo_reports_as_the_demo(tmp_path, run_json):
    """As `test_demo_imported_into_a_workspace_reports_the_published_figures` does with the
    command line."""
    from marketdelta.locations import demo_dir

    stalls, national = (sorted((demo_dir() / s).glob("*.csv")) for s in ("stalls", "national"))
    db = tmp_path / "ws.duckdb"
    result = md.import_surveys(stalls, db, "stalls", known_markets=477, compare="national")
    assert result.summary()[0].startswith(f"{len(stalls)} file(s): added ")
    md.import_surveys(national, db, "national", measure="total")
    assert md.build_report(md.workspace(db)).to_dict()["net_m2"] == 9905
    assert run_json("report", "--db", db) == run_json("report")


@pytest.mark.parametrize("threshold", ["0", "1000000"])
def test_api_import_takes_the_fast_path_for_large_files(tmp_path, run_json, monkeypatch,
                                                        threshold):  # fmt: skip
    from marketdelta.fastread import FAST_OBSERVATIONS_ENV

    monkeypatch.setenv(FAST_OBSERVATIONS_ENV, threshold)
    rows = "Market 1,Town,2020,100\nMarket 2,Town,2020,50\nMarket 1,Town,2021,130\n"
    survey = write(tmp_path / "s.csv", "market,town,year,stall_area_m2\n" + rows)
    result = md.import_surveys([survey], tmp_path / "ws.duckdb")
    assert type(result).__name__ == ("FastImport" if threshold == "0" else "ImportPlan")
    assert result.summary()[0] == "1 file(s): added 3 observations, replaced 0, 0 already present"
    assert run_json("report", "--db", tmp_path / "ws.duckdb") == run_json("report", survey)


def test_api_import_of_a_bad_file_raises_and_changes_nothing(tmp_path):
    db = tmp_path / "ws.duckdb"
    md.import_surveys([write(tmp_path / "0.csv", "market,year,stall_area_m2\nA,2019,1\n")], db)
    before = db.read_bytes()
    bad = write(tmp_path / "1.csv", "market,year,stall_area_m2\nA,2020,two\n")
    with pytest.raises(
        InputError, match=re.escape(f"{bad}:2: column 'stall_area_m2': value 'two'")
    ):
        md.import_surveys([bad], db)
    assert db.read_bytes() == before
    with pytest.raises(ValueError, match="need a survey"):
        md.import_surveys([bad], db, title="Stalls")


def test_api_import_stopped_leaves_no_new_workspace(tmp_path, monkeypatch):
    from marketdelta.fastread import FAST_OBSERVATIONS_ENV

    def stopped(*_):
        raise KeyboardInterrupt

    monkeypatch.setenv(FAST_OBSERVATIONS_ENV, "0")
    monkeypatch.setattr("marketdelta.fastpath.import_files", stopped)
    db = tmp_path / "ws.duckdb"
    plain = write(tmp_path / "s.csv", "market,town,year,stall_area_m2\nMarket 1,T,2020,100\n")
    with pytest.raises(KeyboardInterrupt):
        md.import_surveys([plain], db)
    assert not db.exists() and not db.with_name("ws.duckdb.wal").exists()


def test_import_marketdelta_is_light():
    code = "import sys, marketdelta; print('pandas' in sys.modules, marketdelta.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("False ")


def test_no_color_and_pipes_get_no_escape_codes(tmp_path):
    env = {"NO_COLOR": "1", "PATH": "", "HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "marketdelta", "report"],
        capture_output=True,
        env=env,
        cwd=tmp_path,
        check=True,
    )
    assert b"\x1b" not in out.stdout and b"\x1b" not in out.stderr
    assert b"+9,905" in out.stdout


def test_json_closures_written_a_column_at_a_time_read_as_the_generic_encoder(tmp_path):
    from marketdelta import render

    survey = write(
        tmp_path / "s.csv",
        "market,town,lat,lon,year,stall_area_m2,status\n"
        'Sŏngch\'ŏn "Old",Kaesŏng,38.1,126.5,2020,1234.5,\n'
        'Sŏngch\'ŏn "Old",Kaesŏng,38.1,126.5,2021,0,closed\n'
        "Back\\slash,,,,2020,900,\n"
        "Back\\slash,,,,2021,,closed\n"
        "Stays,Town,,,2020,10,\n"
        "Stays,Town,,,2021,20,\n",
    )
    result = md.build_report(md.read([survey]))
    assert len(result.to_dict()["closures"]) == 2
    assert render.to_json(result) == render._dumps(result.to_dict(), "") + "\n"
    none_closed = md.build_report(md.read([survey]), end=2020)
    assert '"closures": []' in render.to_json(none_closed)
    assert render.to_json(none_closed) == render._dumps(none_closed.to_dict(), "") + "\n"


def test_closures_are_named_whatever_their_order(tmp_path):
    """`Report.closure_table` puts the closures beside their markets by position when both are
    in the same order (as the report builders give them), and joins them otherwise."""
    survey = write(
        tmp_path / "c.csv",
        "market,town,year,stall_area_m2\nB,T,2020,5\nB,T,2021,0\nA,U,2020,7\nA,U,2021,0\n"
        "C,T,2020,1\nC,T,2021,2\n",
    )
    result = md.build_report(md.read([survey]))
    table = result.closure_table()
    result.closures = result.closures.iloc[::-1]
    assert result.closure_table().equals(table)
    assert table["market"].tolist() == ["A", "B"]
    assert table["town"].tolist() == ["U", "T"]


def test_csv_report_reads_back_as_the_table_of_markets(tmp_path):
    import csv
    import io
    import math

    from marketdelta import render

    survey = write(
        tmp_path / "s.csv",
        "market,town,lat,lon,year,stall_area_m2\n"
        '"Sŏngch\'ŏn ""Old"", East",Kaesŏng,38.123456789,126.5,2020,1234.5\n'
        '"Sŏngch\'ŏn ""Old"", East",Kaesŏng,38.123456789,126.5,2021,1300.25\n'
        "=Formula,,,,2020,900\n"
        "=Formula,,,,2021,0.1\n",
    )
    result = md.build_report(md.read([survey]))
    rows = list(csv.DictReader(io.StringIO(render.to_csv(result))))
    frame = result.to_frame()
    assert [row["market"] for row in rows] == ['Sŏngch\'ŏn "Old", East', "'=Formula"]
    for row, market in zip(rows, frame.to_dict("records"), strict=True):
        assert list(row) == list(frame.columns)
        for column, value in market.items():
            if isinstance(value, float):
                assert (math.isnan(value) and row[column] == "") or float(row[column]) == value
            elif column != "market":
                assert row[column] == ("" if value is None or value is pd.NA else str(value))


def test_areas_of_a_column_are_the_area_of_each_value():
    from marketdelta.report import _areas, area

    values = pd.Series([850.0, 1234.5, None, 0.0, -10.0, 2.675, 3.999999, 1e20, float("inf")])
    expected = [area(v) for v in values.tolist()]
    assert _areas(values) == expected
    assert list(map(type, _areas(values))) == list(map(type, expected))
