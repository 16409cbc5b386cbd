"""`report` and `validate` on small hand-made files."""

from __future__ import annotations

import signal

import pytest
from conftest import FIXTURES, interrupted_query, write

from marketdelta.cli import main


def test_long_files(run_json):
    result = run_json("report", FIXTURES / "long-2020.csv", FIXTURES / "long-2022.csv")
    assert result["survey"] == "default"
    assert (result["start_m2"], result["end_m2"], result["net_m2"]) == (350, 320, -30)
    assert result["top"]["share_of_net"] is None  # net <= 0
    assert result["counts"] == {
        "increased": 1,
        "decreased": 1,
        "unchanged": 1,
        "opened": 0,
        "closed": 0,
    }
    assert result["universe"] is None and result["compare"] is None


def test_wide_file_gives_the_same_figures(run_json):
    long = run_json("report", FIXTURES / "long-2020.csv", FIXTURES / "long-2022.csv")
    wide = run_json("report", FIXTURES / "wide.csv")
    for key in ("start_m2", "end_m2", "net_m2", "counts", "annual", "top"):
        assert long[key] == wide[key]


def test_file_order_does_not_matter(run_json):
    forward = run_json("report", FIXTURES / "long-2020.csv", FIXTURES / "long-2022.csv")
    backward = run_json("report", FIXTURES / "long-2022.csv", FIXTURES / "long-2020.csv")
    assert forward == backward


def test_messy_file(tmp_path, run_json):
    messy = write(
        tmp_path / "messy.csv",
        "\ufeff Market , TOWN ,Stall Area M2,Coordinates,Status,Whatever\n"
        'Alpha,Town A,"1,200","39.4301° 127.2502°",open,x\n'
        "Beta,Town A,,,,y\n"
        'Gamma,Town A,,"39.4301, 127.2502",closed,z\n',
    )
    later = write(
        tmp_path / "later.csv",
        "market,town,year,stall_area_m2\nAlpha,Town A,2022,1300\nBeta,Town A,2022,10\n"
        "Gamma,Town A,2022,0\n",
    )
    result = run_json("report", messy, later, "--year", "2020", "--contributors", "0")
    changes = {c["market"]: c["change_m2"] for c in result["contributors"]}
    # Beta was not observed in 2020 (blank): its baseline is its 2022 observation.
    assert changes == {"Alpha": 100, "Beta": 0, "Gamma": 0}
    assert result["counts"]["unchanged"] == 2


def test_min_change_and_by_province(tmp_path, run_json):
    data = write(
        tmp_path / "p.csv",
        "market,town,province,2020,2021\nA,T1,P1,100,105\nB,T2,P2,100,300\nC,T3,P2,100,0\n",
    )
    result = run_json("report", data, "--min-change", "10", "--by", "province", "--top", "1")
    assert result["counts"]["unchanged"] == 1
    assert result["counts"]["closed"] == 1
    assert result["top"] == {
        "k": 1,
        "change_m2": 200,
        "share_of_net": 1.905,
        "share_of_additions": 0.976,
        "markets": ["B"],
    }
    groups = {g["group"]: g for g in result["by"]["groups"]}
    assert groups["P2"]["net_m2"] == 100 and groups["P1"]["net_m2"] == 5


def test_period_and_universe_options(run_json):
    result = run_json(
        "report", FIXTURES / "wide.csv", "--from", "2020", "--to", "2020", "--universe", "6"
    )
    assert result["net_m2"] == 0
    assert result["avg_annual_net_m2"] is None
    assert result["universe"] == {"known_markets": 6, "share": 0.5}


def test_open_and_total_measures(tmp_path, run_json):
    data = write(
        tmp_path / "m.csv",
        "market,year,stall_area_m2,open_area_m2\nA,2020,100,10\nA,2021,150,40\n",
    )
    assert run_json("report", data, "--measure", "open")["net_m2"] == 30
    total = run_json("report", data, "--measure", "total")
    assert (total["net_m2"], total["measure"]) == (80, "total")


def test_compare_with_another_survey(tmp_path, run_json):
    data = write(
        tmp_path / "two.csv",
        "survey,market,year,stall_area_m2\n"
        "old,A,2010,0\nold,A,2011,1000\nold,A,2012,1200\n"
        "new,B,2020,100\nnew,B,2022,300\n",
    )
    result = run_json("report", data, "--survey", "new", "--compare", "old")
    assert result["compare"]["peak_year"] == 2011
    assert result["compare"]["peak_gross_additions_m2"] == 1000
    assert result["compare"]["decline"] == 0.9


def test_several_surveys_need_a_choice(tmp_path, run):
    data = write(tmp_path / "two.csv", "survey,market,year,stall_area_m2\na,A,2020,1\nb,B,2020,2\n")
    result = run("report", data)
    assert result.exit_code == 1
    assert "--survey" in result.stderr


def test_bad_period_is_a_usage_error(run):
    result = run("report", FIXTURES / "wide.csv", "--from", "2022", "--to", "2020")
    assert result.exit_code == 2


def test_validate_ok(run):
    result = run("validate", FIXTURES / "long-2020.csv", FIXTURES / "long-2022.csv")
    assert result.exit_code == 0
    assert "OK: 2 file(s), 6 rows" in result.stdout


def test_bad_value_names_file_line_column_and_value(tmp_path, run):
    bad = write(tmp_path / "bad.csv", "market,year,stall_area_m2\nA,2020,100\nB,2020,abc\n")
    for command in ("validate", "report"):
        result = run(command, bad)
        assert result.exit_code == 1
        assert f"{bad}:3: column 'stall_area_m2': value 'abc' — not a number" in result.stderr
        assert "Traceback" not in result.output


def test_all_problems_are_listed(tmp_path, run):
    bad = write(
        tmp_path / "bad.csv", "market,year,stall_area_m2\nA,2020,-5\nB,1850,10\nC,2020,nan\n"
    )
    result = run("validate", bad)
    assert result.exit_code == 1
    assert ":2: column 'stall_area_m2': value '-5'" in result.stderr
    assert ":3: column 'year': value '1850'" in result.stderr
    assert ":4: column 'stall_area_m2': value 'nan'" in result.stderr


def test_missing_year_needs_the_option(tmp_path, run):
    data = write(tmp_path / "noyear.csv", "market,stall_area_m2\nA,100\n")
    result = run("validate", data)
    assert result.exit_code == 1
    assert "--year" in result.stderr
    assert run("validate", data, "--year", "2021").exit_code == 0


def test_conflicting_duplicates_across_files(tmp_path, run):
    a = write(tmp_path / "a.csv", "market,town,year,stall_area_m2\nA,T,2020,100\n")
    b = write(tmp_path / "b.csv", "market,town,year,stall_area_m2\na ,t,2020,120\n")
    same = write(tmp_path / "c.csv", "market,town,year,stall_area_m2\nA,T,2020,100\n")
    result = run("report", a, b)
    assert result.exit_code == 1
    assert "different area" in result.stderr
    assert run("report", a, same).exit_code == 0


def test_stdin_source(run):
    text = (FIXTURES / "wide.csv").read_text()
    result = run("report", "-", "--format", "json", input=text)
    assert result.exit_code == 0, result.output
    assert '"net_m2": -30' in result.stdout


def test_version(run):
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith("marketdelta ")


def test_names_are_printed_as_written_not_as_markup(tmp_path, run, monkeypatch):
    """Square brackets and colons in names are text: rich would drop `[old site]` as a
    style, fail on `[/]` and turn `:x:` into an emoji."""
    monkeypatch.setenv("COLUMNS", "200")
    names = ["Hoeryong [old site]", "Ryomyong [/] annex", "Sunam :x: market"]
    rows = [f"{name},Town [b],{year},{area}" for name in names for year, area in ((2020, 100),
            (2021, 150 if "Hoe" in name else 0))]  # fmt: skip
    survey = write(tmp_path / "brackets.csv", "\n".join(["market,town,year,stall_area_m2", *rows]))
    result = run("report", survey, "--survey", "s[1]")
    assert result.exit_code == 0, result.output
    for name in [*names, "Town [b]", "survey 's[1]'"]:
        assert name in result.stdout
    markdown = run("report", survey, "--survey", "s[1]", "--format", "markdown").stdout
    assert r"| Hoeryong \[old site\] | Town \[b\] |" in markdown
    assert r"survey 's\[1\]'" in markdown.splitlines()[0]
    db = tmp_path / "ws.duckdb"
    assert run("import", survey, "--db", db).exit_code == 0
    assert "brackets.csv" in run("status", "--db", db).stdout


def _main_with(monkeypatch, load_report) -> int:
    """Run `marketdelta report` through `cli.main` with `load_report` in place of the real one;
    the exit status."""
    monkeypatch.setattr("marketdelta.report.load_report", load_report)
    monkeypatch.setattr("sys.argv", ["marketdelta", "report", str(FIXTURES / "long-2020.csv")])
    with pytest.raises(SystemExit) as leaving:
        main()
    return leaving.value.code


def test_ctrl_c_during_a_query_ends_with_status_130_and_no_traceback(monkeypatch, capsys):
    assert _main_with(monkeypatch, interrupted_query) == 130
    assert "Traceback" not in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back


def test_an_error_without_ctrl_c_is_a_bug_and_keeps_its_traceback(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        _main_with(monkeypatch, broken)
