"""Assembling a report: every figure of one survey over one period, in one result object.

`build_report(panel, options)` is the one place where the metrics are put together; the
terminal tables, JSON, CSV, Markdown and the charts are all drawn from the `Report` it returns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import metrics
from .errors import DataError
from .sources import Panel, SurveyInfo

MEASURE_LABELS = {
    "stall": "covered stall area",
    "open": "open-air market space",
    "total": "all market area (stalls and open-air space)",
}


@dataclass(frozen=True)
class ReportOptions:
    """What the user asked for; `None` means the survey's own default."""

    survey: str | None = None
    start: int | None = None
    end: int | None = None
    min_change: float = 0.0
    top: int = 4
    by: str | None = None
    compare: str | None = None
    measure: str | None = None
    universe: int | None = None
    contributors: int = 20


@dataclass(frozen=True)
class Universe:
    known_markets: int
    share: float


@dataclass(frozen=True)
class Comparison:
    """This period's average annual net against another survey's peak annual gross additions."""

    survey: str
    measure: str
    peak_year: int | None
    peak_gross_additions_m2: float
    decline: float | None
    caveat: str | None
    annual: pd.DataFrame = field(repr=False, compare=False, default_factory=pd.DataFrame)
    title: str | None = None


@dataclass
class Report:
    survey: SurveyInfo
    measure: str
    start: int
    end: int
    years: list[int]
    markets: pd.DataFrame
    totals: metrics.Totals
    counts: metrics.Counts
    closures: pd.DataFrame
    annual: pd.DataFrame
    peak: metrics.Peak
    top: metrics.Top
    concentration: metrics.Concentration
    latest_imagery: dict[int, int]
    universe: Universe | None
    compare: Comparison | None
    min_change: float
    contributors: int
    breakdown: pd.DataFrame | None = None
    by: str | None = None
    notices: list[str] = field(default_factory=list)
    origin: str = "files"

    @property
    def measure_label(self) -> str:
        return MEASURE_LABELS[self.measure]

    @property
    def towns(self) -> int:
        """Distinct towns; a market without one counts as a town of its own."""
        towns = self.markets["town"]
        if not towns.hasnans:  # filling a million names costs ≈ 0.15 s
            return int(towns.nunique())
        return int(towns.fillna(self.markets.index.to_series()).nunique())

    @property
    def provinces(self) -> int:
        return int(self.markets["province"].nunique())

    def ranked(self) -> pd.DataFrame:
        """Markets by change, largest first."""
        return metrics.rank_by_change(self.markets)

    def contributor_rows(self) -> pd.DataFrame:
        """The `--contributors` largest changes (all markets for 0)."""
        return metrics.rank_by_change(self.markets, self.contributors or None)

    def to_frame(self) -> pd.DataFrame:
        """One tidy row per market: who it is, where, its baseline, end, change and class."""
        return (
            self.markets.reset_index()
            .rename(columns={"direction": "class"})[
                [
                    "market_key",
                    "market_id",
                    "market",
                    "town",
                    "province",
                    "lat",
                    "lon",
                    "baseline_year",
                    "baseline_m2",
                    "end_year",
                    "end_m2",
                    "change_m2",
                    "class",
                    "dhs_growth",
                ]
            ]
            .sort_values(["province", "town", "market"], na_position="last", kind="stable")
            .reset_index(drop=True)
            .round({"dhs_growth": 6})
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: the contract's keys and a few more."""
        return self.document(self._closure_records())

    def document(self, closures: Any) -> dict[str, Any]:
        """The JSON object with `closures` as its closures list: `to_dict` gives it records;
        the JSON renderer gives it `closure_columns`, which it encodes a column at a time."""
        t = self.totals
        return {
            "survey": self.survey.name,
            "measure": self.measure,
            "measure_label": self.measure_label,
            "from": self.start,
            "to": self.end,
            "years": self.years,
            "markets": len(self.markets),
            "towns": self.towns,
            "provinces": self.provinces,
            "start_m2": area(t.start_m2),
            "end_m2": area(t.end_m2),
            "net_m2": area(t.net_m2),
            "gross_additions_m2": area(t.gross_additions_m2),
            "gross_reductions_m2": area(t.gross_reductions_m2),
            "avg_annual_net_m2": area(t.avg_annual_net_m2),
            "reallocation_m2": area(t.reallocation_m2),
            "excess_reallocation_m2": area(t.excess_reallocation_m2),
            "min_change_m2": area(self.min_change),
            "counts": vars(self.counts).copy(),
            "closures": closures,
            "top": {
                "k": self.top.k,
                "change_m2": area(self.top.change_m2),
                "share_of_net": ratio(self.top.share_of_net),
                "share_of_additions": ratio(self.top.share_of_additions),
                # the names by ranking again: a lookup by key indexes every market's key
                "markets": metrics.rank_by_change(self.markets, self.top.k)["market"].tolist(),
            },
            "contributors": [
                {
                    "market": row.market,
                    "town": _text(row.town),
                    "province": _text(row.province),
                    "change_m2": area(row.change_m2),
                    "class": row.direction,
                }
                for row in self.contributor_rows().itertuples()
            ],
            "annual": [
                {
                    "year": int(row.year),
                    "gross_additions_m2": area(row.gross_additions_m2),
                    "gross_reductions_m2": area(row.gross_reductions_m2),
                    "net_m2": area(row.net_m2),
                    "markets_observed": int(row.markets_observed),
                }
                for row in self.annual.itertuples()
            ],
            "peak": {
                "year": self.peak.year,
                "gross_additions_m2": area(self.peak.gross_additions_m2),
            },
            "concentration": {
                "hhi_additions": ratio(self.concentration.hhi_additions, 1),
                "gini_additions": ratio(self.concentration.gini_additions),
                "gini_end_area": ratio(self.concentration.gini_end_area),
            },
            "latest_imagery": {str(year): n for year, n in self.latest_imagery.items()},
            "universe": None
            if self.universe is None
            else {
                "known_markets": self.universe.known_markets,
                "share": ratio(self.universe.share),
            },
            "compare": None
            if self.compare is None
            else {
                "survey": self.compare.survey,
                "measure": self.compare.measure,
                "peak_year": self.compare.peak_year,
                "peak_gross_additions_m2": area(self.compare.peak_gross_additions_m2),
                "decline": ratio(self.compare.decline),
                "caveat": self.compare.caveat,
            },
            "by": None
            if self.breakdown is None
            else {"level": self.by, "groups": _records(self.breakdown)},
        }

    def _closure_records(self) -> list[dict[str, Any]]:
        columns = self.closure_columns()
        rows = zip(*columns.values(), strict=True)
        return [dict(zip(columns, values, strict=True)) for values in rows]

    def closure_columns(self) -> dict[str, list[Any]]:
        """The closures list of the JSON object, a list of values for each key."""
        table = self.closure_table()
        return {
            "market": _texts(table["market"]),
            "town": _texts(table["town"]),
            "lat": _numbers(table["lat"]),
            "lon": _numbers(table["lon"]),
            "area_before_m2": _areas(table["area_before_m2"]),
            "last_open_year": table["last_open_year"].astype("int64").tolist(),
            "closed_by_year": table["closed_by_year"].astype("int64").tolist(),
        }

    def closure_table(self) -> pd.DataFrame:
        """Closed markets with where they were and what they had, by name."""
        closed = self.markets.loc[self.markets["closed"].to_numpy()]  # a join hashes every key
        where = closed[["market", "town", "province", "lat", "lon"]]
        if self.closures.index.equals(where.index):  # as both paths give them: no join needed
            table = pd.concat([self.closures, where.set_axis(self.closures.index)], axis=1)
        else:
            table = self.closures.join(where)
        return table.sort_values("market", kind="stable")


def area(value: float | None) -> float | int | None:
    """Areas in JSON: whole square metres as integers, else two decimals."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    rounded = round(float(value), 2)
    return int(rounded) if rounded.is_integer() else rounded


def _areas(values: pd.Series) -> list[float | int | None]:
    """`area` of each value; whole square metres (most areas) without a call each."""
    numbers = values.to_numpy(dtype="float64", na_value=np.nan)
    whole = (numbers == np.trunc(numbers)) & (np.abs(numbers) < 2**53)  # exact as integers
    result = numbers.astype(object)
    result[whole] = numbers[whole].astype(np.int64).tolist()
    rest = np.flatnonzero(~whole)
    result[rest] = [area(v) for v in numbers[rest].tolist()]
    return result.tolist()


def ratio(value: float | None, digits: int = 3) -> float | None:
    """Shares in JSON: three decimals (a tenth of a percentage point)."""
    if value is None or math.isnan(value):
        return None
    return round(float(value), digits)


def _text(value: Any) -> str | None:
    return None if pd.isna(value) else str(value)


def _texts(values: pd.Series) -> list[str | None]:
    return values.astype(object).where(values.notna(), None).tolist()


def _numbers(values: pd.Series) -> list[float | None]:
    return values.astype("float64").astype(object).where(values.notna(), None).tolist()


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {
            k: (area(v) if isinstance(v, float) else v.item() if hasattr(v, "item") else v)
            for k, v in row.items()
        }
        for row in frame.to_dict(orient="records")
    ]


def load_report(sources, db, read, options: ReportOptions, reading=None) -> Report:
    """Find the data (files, else the workspace, else the demo) and build the report.

    Large files and every workspace are computed inside DuckDB (`fastpath`); the rest, and any
    file the fast path declines, by the reference path below. Both give the same figures.
    `reading` is the files' read into DuckDB, if the caller started it
    (`fastread.reading_early`).
    """
    from .fastread import fast_path_wanted
    from .locations import workspace_path
    from .sources import load_panel

    if sources:
        if reading is not None or fast_path_wanted(sources):
            from . import fastpath

            fast = fastpath.report_from_files(sources, read, options, reading)
            if fast is not None:
                return fast
        return build_report(load_panel(sources, db, read), options)
    path = workspace_path(db)
    if path is not None and path.exists():
        from .store import Workspace

        with Workspace.open(path) as workspace:
            return workspace.report(options)
    return build_report(load_panel((), db, read), options)


def build_report(panel: Panel, options: ReportOptions | None = None) -> Report:
    """Every figure of one survey over one period."""
    options = options or ReportOptions()
    survey = panel.survey(options.survey)
    measure = options.measure or survey.measure
    rows = metrics.panel_of(panel.observations_of(survey.name, metrics.PANEL_INPUT), measure)
    years = sorted(int(y) for y in rows["year"].unique())
    start, end = period(years, options, survey, measure)
    changes = metrics.market_changes(rows, start, end, options.min_change)
    markets = panel.markets().join(changes, how="inner")
    compare = None
    other = panel.comparison_for(survey, options.compare)
    if other is not None:
        other_rows = metrics.panel_of(
            panel.observations_of(other.name, metrics.PANEL_INPUT), other.measure
        )
        compare = (other, metrics.annual_series(other_rows, *_span(other_rows["year"])))
    return assemble(
        survey=survey,
        measure=measure,
        start=start,
        end=end,
        years=[y for y in years if start <= y <= end],
        markets=markets,
        figures=market_figures(markets, start, end, options.top),
        annual=metrics.annual_series(rows, start, end),
        closures=metrics.closures(rows, markets, end),
        compare=compare,
        options=options,
        notices=list(panel.notices),
        origin=panel.origin,
    )


def _span(years: pd.Series) -> tuple[int, int]:
    return int(years.min()), int(years.max())


def period(
    years: list[int], options: ReportOptions, survey: SurveyInfo, measure: str
) -> tuple[int, int]:
    """FROM and TO: as asked, else the survey's first and last observed years."""
    if not years:
        raise DataError(f"survey '{survey.name}' has no observed {MEASURE_LABELS[measure]}")
    start = options.start if options.start is not None else years[0]
    end = options.end if options.end is not None else years[-1]
    if start > end:
        raise DataError(f"--from {start} is after --to {end}; swap them")
    if years[0] > end:
        raise DataError(f"survey '{survey.name}' has no observations at or before {end}")
    return start, end


@dataclass(frozen=True)
class MarketFigures:
    """The figures over a period's markets, which need neither the annual series nor the
    closures (the fast path computes them while DuckDB computes those)."""

    totals: metrics.Totals
    counts: metrics.Counts
    top: metrics.Top
    concentration: metrics.Concentration
    latest_imagery: dict[int, int]


def market_figures(markets: pd.DataFrame, start: int, end: int, top: int) -> MarketFigures:
    """The figures over the classified `markets` of the period from `start` to `end`, with
    the `top` largest contributors."""
    totals = metrics.totals(markets, start, end)
    return MarketFigures(
        totals=totals,
        counts=metrics.counts(markets),
        top=metrics.top_k(markets, top, totals),
        concentration=metrics.concentration(markets),
        latest_imagery=metrics.latest_imagery(markets, markets["town"]),
    )


def assemble(
    *,
    survey: SurveyInfo,
    measure: str,
    start: int,
    end: int,
    years: list[int],
    markets: pd.DataFrame,
    figures: MarketFigures,
    annual: pd.DataFrame,
    closures: pd.DataFrame,
    compare: tuple[SurveyInfo, pd.DataFrame] | None,
    options: ReportOptions,
    notices: list[str],
    origin: str,
) -> Report:
    """The report from its ingredients (the classified markets and their `market_figures`,
    the annual series, the closures), however they were computed."""
    totals = figures.totals
    known = options.universe if options.universe is not None else survey.known_markets
    report = Report(
        survey=survey,
        measure=measure,
        start=start,
        end=end,
        years=years,
        markets=markets,
        totals=totals,
        counts=figures.counts,
        closures=closures,
        annual=annual,
        peak=metrics.peak(annual),
        top=figures.top,
        concentration=figures.concentration,
        latest_imagery=figures.latest_imagery,
        universe=Universe(known, len(markets) / known) if known else None,
        compare=None if compare is None else comparison(*compare, measure, totals),
        min_change=options.min_change,
        contributors=options.contributors,
        notices=notices,
        origin=origin,
    )
    if options.by:
        report.by = options.by
        report.breakdown = metrics.breakdown(markets, markets[options.by])
    return report


def comparison(
    other: SurveyInfo, annual: pd.DataFrame, measure: str, totals: metrics.Totals
) -> Comparison:
    """This period's average annual net against the other survey's peak gross additions."""
    best = metrics.peak(annual)
    caveat = None
    if other.measure != measure:
        caveat = (
            f"compares an average annual net change in {MEASURE_LABELS[measure]} with a peak "
            f"of annual gross additions in {MEASURE_LABELS[other.measure]}"
        )
    return Comparison(
        survey=other.name,
        measure=other.measure,
        peak_year=best.year,
        peak_gross_additions_m2=best.gross_additions_m2,
        decline=metrics.decline(totals.avg_annual_net_m2, best.gross_additions_m2),
        caveat=caveat,
        annual=annual,
        title=other.title,
    )
