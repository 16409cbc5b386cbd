"""End to end: the CLI on the bundled demo reproduces every published figure."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def demo():
    import json

    from typer.testing import CliRunner

    from marketdelta.cli import app

    result = CliRunner().invoke(app, ["report", "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_headline_figures(demo):
    assert demo["survey"] == "stalls"
    assert demo["measure"] == "stall"
    assert (demo["from"], demo["to"]) == (2020, 2025)
    assert demo["markets"] == 222
    assert demo["towns"] == 138
    assert demo["provinces"] == 12  # every province represented
    assert demo["net_m2"] == 9905
    assert demo["end_m2"] - demo["start_m2"] == 9905
    assert demo["avg_annual_net_m2"] == 1981


def test_direction_counts(demo):
    assert demo["counts"]["increased"] == 26
    assert demo["counts"]["decreased"] == 15
    assert demo["counts"]["unchanged"] == 181
    assert demo["counts"]["closed"] == 4
    assert sum(demo["counts"][k] for k in ("increased", "decreased", "unchanged")) == 222


def test_concentration_of_growth(demo):
    top = demo["top"]
    assert top["k"] == 4
    assert top["change_m2"] == 5140
    assert top["share_of_net"] == 0.519
    assert sorted(top["markets"]) == [
        "Pyongyang-Hadang Market #2",
        "Pyongyang-Hadang Market #3",
        "Sariwon Market #2",
        "Sariwon Market #4",
    ]
    sariwon4 = next(c for c in demo["contributors"] if c["market"] == "Sariwon Market #4")
    assert sariwon4["class"] == "opened"  # built entirely in mid-2020


def test_closures(demo):
    closures = {c["market"]: c for c in demo["closures"]}
    assert set(closures) == {"Haksan", "Nampo-Waudo", "Tokryong Market #2", "Yomjon"}
    expected = {
        "Haksan": (400, 2020, 2024, 39.430997, 126.021379),
        "Nampo-Waudo": (650, 2022, 2024, 38.723984, 125.348461),
        "Tokryong Market #2": (350, 2020, 2022, 40.219230, 124.694337),
        "Yomjon": (1270, 2022, 2025, 37.766101, 126.127783),
    }
    for name, (area, last_open, closed_by, lat, lon) in expected.items():
        c = closures[name]
        assert (c["area_before_m2"], c["last_open_year"], c["closed_by_year"]) == (
            area,
            last_open,
            closed_by,
        )
        assert (c["lat"], c["lon"]) == pytest.approx((lat, lon), abs=1e-6)


def test_coverage_and_imagery(demo):
    assert demo["latest_imagery"] == {"2024": 69, "2025": 69}
    assert demo["universe"] == {"known_markets": 477, "share": 0.465}


def test_comparison_with_the_2019_peak(demo):
    compare = demo["compare"]
    assert compare["survey"] == "national"
    assert compare["peak_year"] == 2019
    assert compare["peak_gross_additions_m2"] == 23260
    assert compare["decline"] == 0.915
    assert "net" in compare["caveat"] and "gross" in compare["caveat"]


def test_national_series(run_json):
    national = run_json("report", "--survey", "national")
    assert national["measure"] == "total"
    annual = {row["year"]: row["gross_additions_m2"] for row in national["annual"]}
    assert annual[2019] == 23260
    assert annual[2020] == 7450
    assert annual[2021] == 630
    assert round(1 - annual[2020] / annual[2019], 2) == 0.68  # "a 68% drop"
    assert national["peak"] == {"year": 2019, "gross_additions_m2": 23260}
    rising = [annual[y] for y in range(2011, 2020)]
    assert rising == sorted(rising)
    assert national["markets"] >= 300


def test_demo_notice_goes_to_stderr(run):
    result = run("report", "--format", "json")
    assert "bundled demo" in result.stderr
    assert "Nampo-Wadu" in result.stderr  # the fuzzy merge is reported
    assert "bundled demo" not in result.stdout


def test_table_shows_the_figures(run):
    result = run("report")
    assert result.exit_code == 0
    for text in ("+9,905", "+1,981", "Haksan", "Yomjon", "1,270", "46.5%", "91.5%", "51.9%"):
        assert text in result.stdout


def test_markdown_and_csv(run):
    markdown = run("report", "--format", "markdown").stdout
    assert markdown.startswith("## ")
    assert "+9,905 m²" in markdown and "| Haksan |" in markdown
    csv_text = run("report", "--format", "csv").stdout
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("market_key,market_id,market,town,province,lat,lon")
    assert len(lines) == 223
