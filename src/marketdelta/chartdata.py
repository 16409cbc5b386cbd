"""What each chart shows, taken from a `Report`: plain numbers, labels, a title and a source line.

The drawing (`charts.py`) needs nothing else, so these are what a chart keeps between runs.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from . import metrics
from .__about__ import __version__
from .charts import (
    Chart,
    ConcentrationChart,
    ContributorsChart,
    MapChart,
    ProvincesChart,
    SeriesChart,
)
from .report import MEASURE_LABELS, Report

SHORT_LABELS = {
    "stall": "covered stalls only",
    "open": "open-air space",
    "total": "all market space",
}


def chart_data(kind: str, report: Report, bars: int = 10) -> Chart:
    """The data of one chart kind; `bars` is how many gainers and losers `contributors` shows."""
    if kind not in MAKERS:
        raise ValueError(f"unknown chart {kind!r}; choose one of {', '.join(MAKERS)}")
    if kind == "contributors":
        return contributors(report, bars)
    return MAKERS[kind](report)


def source_line(report: Report, extra: str = "") -> str:
    origin = {
        "demo": "bundled demo data (calibrated illustrative; see data/README.md)",
        "files": "survey files",
    }.get(report.origin, report.origin)
    return f"Source: {origin}{extra}. Drawn with marketdelta {__version__}."


def _span(report: Report) -> str:
    return f"{report.start}-{report.end}"


def _floats(column: pd.Series) -> list[float]:
    return [float(v) for v in column]


def _ints(column: pd.Series) -> list[int]:
    return [int(v) for v in column]


def _number(value: float | None) -> float | None:
    """A plain float (not numpy's), as a chart read back from JSON has."""
    return None if value is None else float(value)


def series(report: Report) -> SeriesChart:
    own = report.annual
    compare = report.compare
    other = compare.annual if compare is not None and not compare.annual.empty else None
    peak = metrics.peak(own if other is None else other)
    title = f"Annual change in {MEASURE_LABELS[report.measure]}, {_span(report)}"
    extra = ""
    if compare is not None and compare.caveat:
        extra = f"; note the change of measure: the line {compare.caveat}"
    if other is not None:
        title = f"New market area per year, {int(other['year'].min())}-{report.end}"
    return SeriesChart(
        title=title,
        source=source_line(report, extra),
        start=int(report.start),
        end=int(report.end),
        measure_label=MEASURE_LABELS[report.measure],
        own_label=f"{SHORT_LABELS[report.measure]} (survey '{report.survey.name}')",
        own_years=_ints(own["year"]),
        own_gross_m2=_floats(own["gross_additions_m2"]),
        own_net_m2=_floats(own["net_m2"]),
        avg_annual_net_m2=_number(report.totals.avg_annual_net_m2),
        peak_year=None if peak.year is None else int(peak.year),
        peak_m2=_number(peak.gross_additions_m2),
        **(
            {}
            if other is None or compare is None
            else {
                "other_label": f"{SHORT_LABELS[compare.measure]} (survey '{compare.survey}')",
                "other_years": _ints(other["year"]),
                "other_gross_m2": _floats(other["gross_additions_m2"]),
            }
        ),
    )


def contributors(report: Report, bars: int = 10) -> ContributorsChart:
    ranked = report.ranked()
    gains = ranked[ranked["change_m2"] > 0].head(bars)
    losses = ranked[ranked["change_m2"] < 0].tail(bars)
    shown = pd.concat([gains, losses]).iloc[::-1]
    return ContributorsChart(
        title=contributors_title(report),
        source=source_line(report),
        xlabel=f"Change in {MEASURE_LABELS[report.measure]}, {_span(report)} (m²)",
        labels=[
            f"{row.market} ({row.town})"
            if isinstance(row.town, str) and row.town not in row.market
            else str(row.market)
            for row in shown.itertuples()
        ],
        change_m2=_floats(shown["change_m2"]),
        directions=[str(d) for d in shown["direction"]],
    )


def contributors_title(report: Report) -> str:
    top = report.top
    share = (
        f"{top.share_of_net:.1%} of net growth"
        if top.share_of_net is not None
        else f"{top.share_of_additions or 0:.1%} of gross additions"
    )
    return f"The top {top.k} markets account for {top.change_m2:,.0f} m², {share}"


def concentration(report: Report) -> ConcentrationChart:
    curve = metrics.lorenz_curve(report.markets["change_m2"].clip(lower=0))
    markets = len(report.markets)
    return ConcentrationChart(
        title=f"How concentrated was growth? Gains across {markets} markets, {_span(report)}",
        source=source_line(report),
        share_of_markets=_floats(curve["share_of_markets"]),
        share_of_gains=_floats(curve["share_of_total"]),
        markets=markets,
        top_k=int(report.top.k),
        gini=_number(report.concentration.gini_additions),
        top_share_of_additions=_number(report.top.share_of_additions),
        top_share_of_net=_number(report.top.share_of_net),
    )


def market_map(report: Report) -> MapChart:
    placed = report.markets.dropna(subset=["lat", "lon"])
    return MapChart(
        title=f"{len(report.markets)} markets in {report.towns} towns: change {_span(report)}",
        source=source_line(report),
        market=[str(m) for m in placed["market"]],
        lat=_floats(placed["lat"]),
        lon=_floats(placed["lon"]),
        baseline_m2=_floats(placed["baseline_m2"]),
        end_m2=_floats(placed["end_m2"]),
        directions=[str(d) for d in placed["direction"]],
    )


def provinces(report: Report) -> ProvincesChart:
    """Net change by province (from the report's breakdown when it was built `by='province'`)."""
    table = report.breakdown
    if table is None:
        table = metrics.breakdown(report.markets, report.markets["province"])
    table = table.sort_values("net_m2")
    return ProvincesChart(
        title=f"Net change by province, {_span(report)}",
        source=source_line(report),
        xlabel=f"Net change in {MEASURE_LABELS[report.measure]}, {_span(report)} (m²)",
        provinces=[str(g) for g in table["group"]],
        net_m2=_floats(table["net_m2"]),
        markets=_ints(table["markets"]),
    )


MAKERS: dict[str, Callable[[Report], Chart]] = {
    "series": series,
    "contributors": contributors,
    "concentration": concentration,
    "map": market_map,
    "provinces": provinces,
}
