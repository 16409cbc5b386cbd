"""Invariants on random panels (hypothesis), and a slow reference implementation."""

from __future__ import annotations

import itertools

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from marketdelta import metrics

YEARS = list(range(2018, 2026))


@st.composite
def panels(draw) -> pd.DataFrame:
    """Random markets, years with gaps, zeros, closures and reopenings."""
    rows = []
    for market in range(draw(st.integers(1, 12))):
        years = draw(st.lists(st.sampled_from(YEARS), min_size=1, max_size=len(YEARS), unique=True))
        for year in years:
            area = draw(st.one_of(st.just(0), st.integers(0, 50).map(lambda a: a * 10)))
            rows.append((f"M{market:02d}", year, float(area)))
    frame = pd.DataFrame(rows, columns=["market_key", "year", "area"])
    return frame.sort_values(["market_key", "year"]).reset_index(drop=True)


periods = st.tuples(st.sampled_from(YEARS), st.sampled_from(YEARS)).map(sorted)


def reference(panel: pd.DataFrame, start: int, end: int, m: float) -> dict:
    """The contract's definitions, written as plainly as possible."""
    by_market: dict[str, list[tuple[int, float]]] = {}
    for key, year, area in panel.itertuples(index=False):
        by_market.setdefault(key, []).append((year, area))
    add = red = 0.0
    counts = dict.fromkeys(metrics.CLASSES, 0)
    annual_net = dict.fromkeys(range(start + 1, end + 1), 0.0)
    for obs in by_market.values():
        obs.sort()
        upto = [o for o in obs if o[0] <= end]
        if not upto:
            continue
        before = [o for o in upto if o[0] <= start]
        baseline = before[-1][1] if before else upto[0][1]
        final = upto[-1][1]
        change = final - baseline
        add += max(change, 0)
        red += max(-change, 0)
        opened = baseline == 0 and final > 0
        closed = baseline > 0 and final == 0
        inc, dec = change > m or opened, change < -m or closed
        counts["increased"] += inc
        counts["decreased"] += dec
        counts["unchanged"] += not inc and not dec
        counts["opened"] += opened
        counts["closed"] += closed
        for (_, a0), (y1, a1) in itertools.pairwise(upto):
            if start < y1 <= end:
                annual_net[y1] += a1 - a0
    return {"add": add, "red": red, "counts": counts, "annual_net": annual_net}


@given(panels(), periods, st.sampled_from([0.0, 5.0, 30.0]))
def test_matches_the_reference(panel, period, m):
    start, end = period
    changes = metrics.market_changes(panel, start, end, m)
    if changes.empty:
        return
    t = metrics.totals(changes, start, end)
    want = reference(panel, start, end, m)
    assert (t.gross_additions_m2, t.gross_reductions_m2) == (want["add"], want["red"])
    assert vars(metrics.counts(changes)) == want["counts"]
    annual = metrics.annual_series(panel, start, end).set_index("year")["net_m2"]
    assert annual.to_dict() == want["annual_net"]


@given(panels(), periods)
def test_net_identities(panel, period):
    start, end = period
    changes = metrics.market_changes(panel, start, end)
    t = metrics.totals(changes, start, end)
    assert t.net_m2 == t.gross_additions_m2 - t.gross_reductions_m2
    assert t.net_m2 == t.end_m2 - t.start_m2
    annual = metrics.annual_series(panel, start, end)
    assert annual["net_m2"].sum() == t.net_m2
    assert annual["gross_additions_m2"].sum() >= t.gross_additions_m2
    assert annual["gross_reductions_m2"].sum() >= t.gross_reductions_m2
    c = metrics.counts(changes)
    assert c.increased + c.decreased + c.unchanged == len(changes)


@given(panels(), periods, st.floats(0, 100))
def test_min_change_changes_counts_only(panel, period, m):
    start, end = period
    base = metrics.market_changes(panel, start, end)
    other = metrics.market_changes(panel, start, end, m)
    assert metrics.totals(base, start, end) == metrics.totals(other, start, end)
    assert metrics.counts(base).opened == metrics.counts(other).opened
    assert metrics.counts(other).unchanged >= metrics.counts(base).unchanged


@given(panels(), periods, st.randoms())
def test_row_order_does_not_matter(panel, period, random):
    start, end = period
    shuffled = panel.sample(frac=1, random_state=random.randint(0, 10**6))
    resorted = shuffled.sort_values(["market_key", "year"]).reset_index(drop=True)
    a = metrics.market_changes(panel, start, end)
    b = metrics.market_changes(resorted, start, end)
    pd.testing.assert_frame_equal(a, b)
