"""Charts: every kind in every format, heights equal to the report, reproducible files."""

from __future__ import annotations

import warnings

import pytest
from conftest import FIXTURES, write
from matplotlib.figure import Figure
from matplotlib.text import Text

from marketdelta import chartdata, charts
from marketdelta.report import ReportOptions, build_report
from marketdelta.sources import read_demo, read_files
from marketdelta.survey import ReadOptions

MAGIC = {".png": b"\x89PNG\r\n\x1a\n", ".svg": b"<?xml", ".pdf": b"%PDF-"}


@pytest.fixture(scope="module")
def demo_report():
    return build_report(read_demo(), ReportOptions(by="province"))


@pytest.mark.parametrize("kind", charts.KINDS)
def test_every_kind_writes_every_format(tmp_path, demo_report, kind):
    fig = charts.figure(kind, demo_report)
    for suffix, magic in MAGIC.items():
        path = charts.save(fig, tmp_path / f"{kind}{suffix}", dpi=60)
        data = path.read_bytes()
        assert data.startswith(magic)
        assert len(data) > 5_000


def test_cli_writes_the_file_and_prints_its_path(tmp_path, run):
    out = tmp_path / "c.svg"
    result = run("chart", "contributors", "--out", out, "-q")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out)
    assert out.read_bytes().startswith(b"<?xml")
    default = run("chart", "-q")
    assert default.stdout.strip() == "series.png"
    assert (tmp_path / "series.png").exists()  # the tests run in tmp_path


def test_cli_chart_from_files(tmp_path, run):
    out = tmp_path / "m.png"
    result = run("chart", "map", FIXTURES / "wide.csv", "--out", out)
    assert result.exit_code == 0, result.output
    result = run("chart", FIXTURES / "wide.csv", "--out", tmp_path / "s.pdf")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("kind", charts.KINDS)
def test_one_year_of_data_is_drawn_without_error(tmp_path, run, kind):
    result = run("chart", kind, FIXTURES / "long-2020.csv", "--out", tmp_path / "c.svg", "-q")
    assert result.exit_code == 0, result.output


def test_the_cli_knows_every_kind():
    from marketdelta.cli import CHART_KINDS  # its own list, so that --help imports no matplotlib

    assert CHART_KINDS == charts.KINDS


def test_cli_refuses_unknown_extension(tmp_path, run):
    result = run("chart", "--out", tmp_path / "c.gif")
    assert result.exit_code == 2


def test_series_bars_are_the_reports_annual_numbers(demo_report):
    fig = Figure()
    ax = fig.add_subplot()
    charts.draw_series(ax, chartdata.series(demo_report))
    bars = {
        container.get_label(): [round(p.get_height()) for p in container.patches]
        for container in ax.containers
    }
    national = next(v for k, v in bars.items() if "national" in k)
    stalls = next(v for k, v in bars.items() if "'stalls'" in k)
    assert national == [round(v) for v in demo_report.compare.annual["gross_additions_m2"]]
    assert stalls == [round(v) for v in demo_report.annual["gross_additions_m2"]]
    assert national[list(demo_report.compare.annual["year"]).index(2019)] == 23260
    average = [line for line in ax.collections if "Average annual net" in str(line.get_label())]
    assert average and average[0].get_segments()[0][0][1] == pytest.approx(1981)


def test_svg_and_pdf_are_reproducible(tmp_path, demo_report):
    for suffix in (".svg", ".pdf"):
        first = charts.save(charts.figure("series", demo_report), tmp_path / f"a{suffix}")
        second = charts.save(charts.figure("series", demo_report), tmp_path / f"b{suffix}")
        assert first.read_bytes() == second.read_bytes()


def _report_naming(tmp_path, *names):
    """A survey file of markets with these names (each grew by 1 m² in 2021) and its report."""
    rows = [f"{name},Town,{year},{year - 2000}" for name in names for year in (2020, 2021)]
    survey = write(tmp_path / "names.csv", "\n".join(["market,town,year,stall_area_m2", *rows]))
    return survey, build_report(read_files([survey], ReadOptions()), ReportOptions())


def test_names_are_drawn_as_written_not_as_tex(tmp_path):
    _, report = _report_naming(tmp_path, "A $x_1$ b", r"$\bad$ market")
    fig = charts.figure("contributors", report)
    charts.save(fig, tmp_path / "contributors.png", dpi=40)  # TeX would refuse r"$\bad$"
    names = [t for t in fig.findobj(Text) if "$" in t.get_text()]
    assert {t.get_text() for t in names} == {"A $x_1$ b (Town)", r"$\bad$ market (Town)"}
    assert not any(t.get_parse_math() for t in names)


def test_characters_no_font_has_are_named(tmp_path, monkeypatch):
    monkeypatch.setitem(charts.STYLE, "font.family", ["DejaVu Sans"])
    _, report = _report_naming(tmp_path, "평양 통일시장", "Ryomyong")
    assert charts.missing_characters(charts.figure("contributors", report)) == "시양일장통평"


def test_a_second_font_supplies_the_glyphs_the_first_lacks(tmp_path, monkeypatch):
    """As a Korean font supplies Hangul: here STIX supplies a letter DejaVu Sans lacks."""
    monkeypatch.setitem(charts.STYLE, "font.family", ["DejaVu Sans", "STIXGeneral"])
    _, report = _report_naming(tmp_path, "Ryomyong ᶄ")
    fig = charts.figure("contributors", report)
    assert charts.missing_characters(fig) == ""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns of each glyph it cannot draw
        charts.save(fig, tmp_path / "c.png", dpi=40)


def test_cli_says_once_which_characters_are_boxes(tmp_path, run, monkeypatch):
    monkeypatch.setitem(charts.STYLE, "font.family", ["DejaVu Sans"])
    survey, _ = _report_naming(tmp_path, "평양 통일시장")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = run("chart", "contributors", survey, "--out", tmp_path / "c.png")
    assert result.exit_code == 0, result.output
    assert result.stderr.count("no installed font has 시 양 일 장 통 평: drawn as boxes") == 1
