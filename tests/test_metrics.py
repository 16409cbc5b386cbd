"""Each metric on small panels whose answers can be checked by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from marketdelta import metrics


def panel(*rows: tuple[str, int, float]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["market_key", "year", "area"])
    return frame.sort_values(["market_key", "year"]).reset_index(drop=True)


SIMPLE = panel(
    ("A", 2020, 100), ("A", 2022, 150),  # +50
    ("B", 2020, 200), ("B", 2022, 120),  # -80
    ("C", 2020, 50), ("C", 2022, 50),  # unchanged
)  # fmt: skip


def test_baseline_end_and_change():
    changes = metrics.market_changes(SIMPLE, 2020, 2022)
    assert changes.loc["A", ["baseline_m2", "end_m2", "change_m2"]].tolist() == [100, 150, 50]
    assert changes["change_m2"].to_dict() == {"A": 50, "B": -80, "C": 0}
    assert changes["direction"].to_dict() == {"A": "increased", "B": "decreased", "C": "unchanged"}


def test_totals_and_job_flows():
    changes = metrics.market_changes(SIMPLE, 2020, 2022)
    t = metrics.totals(changes, 2020, 2022)
    assert (t.start_m2, t.end_m2) == (350, 320)
    assert (t.gross_additions_m2, t.gross_reductions_m2, t.net_m2) == (50, 80, -30)
    assert t.avg_annual_net_m2 == -15
    assert t.reallocation_m2 == 130
    assert t.excess_reallocation_m2 == 100


def test_net_not_positive_gives_no_share_of_net():
    changes = metrics.market_changes(SIMPLE, 2020, 2022)
    top = metrics.top_k(changes, 1, metrics.totals(changes, 2020, 2022))
    assert top.markets == ("A",)
    assert top.change_m2 == 50
    assert top.share_of_net is None
    assert top.share_of_additions == 1.0


def test_late_entrant_uses_its_first_observation_as_baseline():
    p = panel(("D", 2021, 300), ("D", 2022, 400), ("X", 2020, 10), ("X", 2022, 10))
    changes = metrics.market_changes(p, 2020, 2022)
    assert changes.loc["D", ["baseline_year", "baseline_m2", "change_m2"]].tolist() == [
        2021,
        300,
        100,
    ]


def test_baseline_before_the_period_and_markets_after_it():
    p = panel(("H", 2018, 90), ("H", 2021, 100), ("L", 2023, 500))
    changes = metrics.market_changes(p, 2020, 2022)
    assert changes.loc["H", "baseline_year"] == 2018
    assert changes.loc["H", "change_m2"] == 10
    assert "L" not in changes.index  # no observation at or before TO


def test_end_is_the_latest_observation_per_market():
    p = panel(("E", 2020, 100), ("E", 2024, 130), ("F", 2020, 100), ("F", 2025, 90))
    changes = metrics.market_changes(p, 2020, 2025)
    assert changes["end_year"].to_dict() == {"E": 2024, "F": 2025}
    assert metrics.latest_imagery(changes, pd.Series({"E": "T1", "F": "T2"})) == {
        2024: 1,
        2025: 1,
    }


def test_latest_imagery_is_per_town():
    p = panel(("E", 2020, 1), ("E", 2024, 1), ("F", 2020, 1), ("F", 2025, 1), ("G", 2024, 1))
    changes = metrics.market_changes(p, 2020, 2025)
    towns = pd.Series({"E": "T", "F": "T", "G": None})
    assert metrics.latest_imagery(changes, towns) == {2024: 1, 2025: 1}


def test_closure_whose_area_fluctuated():
    p = panel(("F", 2020, 500), ("F", 2021, 700), ("F", 2022, 600), ("F", 2023, 0))
    changes = metrics.market_changes(p, 2020, 2023)
    assert changes.loc["F", "direction"] == "closed"
    assert changes.loc["F", "change_m2"] == -500
    closures = metrics.closures(p, changes, 2023)
    assert closures.loc["F"].tolist() == [600, 2022, 2023]


def test_closure_seen_zero_twice_uses_the_first_zero():
    p = panel(("F", 2020, 500), ("F", 2022, 0), ("F", 2024, 0))
    changes = metrics.market_changes(p, 2020, 2024)
    assert metrics.closures(p, changes, 2024).loc["F"].tolist() == [500, 2020, 2022]


def test_opening():
    p = panel(("G", 2020, 0), ("G", 2022, 250))
    changes = metrics.market_changes(p, 2020, 2022)
    assert changes.loc["G", "direction"] == "opened"
    assert bool(changes.loc["G", "increased"])
    assert changes.loc["G", "dhs_growth"] == 2.0


def test_min_change_moves_counts_not_sums():
    p = panel(("A", 2020, 100), ("A", 2022, 105), ("B", 2020, 100), ("B", 2022, 50))
    loose = metrics.market_changes(p, 2020, 2022)
    strict = metrics.market_changes(p, 2020, 2022, min_change=10)
    assert metrics.counts(loose).increased == 1
    assert metrics.counts(strict).increased == 0
    assert metrics.counts(strict).unchanged == 1
    assert metrics.totals(loose, 2020, 2022) == metrics.totals(strict, 2020, 2022)


def test_closure_counts_as_decreased_whatever_the_threshold():
    p = panel(("A", 2020, 5), ("A", 2022, 0))
    changes = metrics.market_changes(p, 2020, 2022, min_change=100)
    assert metrics.counts(changes) == metrics.Counts(0, 1, 0, 0, 1)


def test_annual_series_with_a_gap_and_a_reversal():
    p = panel(
        ("E", 2020, 100), ("E", 2022, 160),  # not observed in 2021
        ("R", 2020, 100), ("R", 2021, 200), ("R", 2022, 150),  # grows then shrinks
        ("N", 2021, 40), ("N", 2022, 40),  # late entrant: no flow in 2021
    )  # fmt: skip
    annual = metrics.annual_series(p, 2020, 2022).set_index("year")
    assert annual.loc[2021].tolist() == [100, 0, 100, 2]
    assert annual.loc[2022].tolist() == [60, 50, 10, 3]
    changes = metrics.market_changes(p, 2020, 2022)
    t = metrics.totals(changes, 2020, 2022)
    assert annual["net_m2"].sum() == t.net_m2 == 110
    assert annual["gross_additions_m2"].sum() >= t.gross_additions_m2


def test_annual_series_lists_years_without_observations():
    annual = metrics.annual_series(panel(("A", 2020, 1), ("A", 2023, 2)), 2020, 2023)
    assert annual["year"].tolist() == [2021, 2022, 2023]
    assert annual["net_m2"].tolist() == [0, 0, 1]


def test_peak_takes_the_earliest_year_on_a_tie():
    annual = pd.DataFrame({"year": [2019, 2020, 2021], "gross_additions_m2": [5.0, 9.0, 9.0]})
    assert metrics.peak(annual) == metrics.Peak(2020, 9.0)


def test_hhi_and_gini():
    assert metrics.hhi(pd.Series([50.0, 50.0])) == 5000
    assert metrics.hhi(pd.Series([10.0, 0.0])) == 10000
    assert metrics.gini(pd.Series([1.0, 1.0, 1.0, 1.0])) == pytest.approx(0.0)
    assert metrics.gini(pd.Series([0.0, 0.0, 0.0, 4.0])) == pytest.approx(0.75)
    assert metrics.gini(pd.Series([0.0, 0.0])) is None


def test_lorenz_curve_runs_from_zero_to_one():
    curve = metrics.lorenz_curve(pd.Series([0.0, 1.0, 3.0]))
    assert curve["share_of_total"].tolist() == [0.0, 0.0, 0.25, 1.0]


def test_dhs_growth_is_bounded():
    rates = metrics.dhs_growth(
        pd.Series([0.0, 100.0, 100.0, 0.0]), pd.Series([50.0, 0.0, 300.0, 0.0])
    )
    assert rates.tolist() == [2.0, -2.0, 1.0, 0.0]


def test_breakdown_by_group():
    changes = metrics.market_changes(SIMPLE, 2020, 2022)
    table = metrics.breakdown(changes, pd.Series({"A": "P1", "B": "P2", "C": "P1"}))
    row = table.set_index("group").loc["P1"]
    assert (row["markets"], row["net_m2"], row["increased"], row["unchanged"]) == (2, 50, 1, 1)


def test_decline():
    assert metrics.decline(1981, 23260) == pytest.approx(0.91483, abs=1e-5)
    assert metrics.decline(None, 100) is None


def test_measures():
    obs = pd.DataFrame({"stall_area_m2": [10.0, None, 5.0], "open_area_m2": [1.0, 2.0, None]})
    assert metrics.measured_area(obs, "total").tolist()[0] == 11.0
    assert pd.isna(metrics.measured_area(obs, "total").tolist()[1])
    assert metrics.measured_area(obs, "total").tolist()[2] == 5.0
    assert metrics.measured_area(obs, "open").tolist()[:2] == [1.0, 2.0]
