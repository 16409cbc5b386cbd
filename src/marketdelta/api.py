"""The notebook API: read surveys, compute a report, draw a chart onto your own Axes, import
surveys into a workspace.

import marketdelta as md
panel = md.read(["2020.csv", "2021.csv"], survey="stalls")   # or md.demo(), md.workspace(path)
result = md.build_report(panel, start=2020, end=2025, min_change=20)
result.to_frame()            # one tidy row per market
result.to_dict()["net_m2"]   # the JSON object `marketdelta report --format json` prints
md.draw("series", result, ax)
md.import_surveys(["2026.csv"], "markets.duckdb", survey="stalls").summary()  # into a workspace
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from matplotlib.axes import Axes

from . import charts
from .chartdata import chart_data
from .fastread import importing_early
from .report import Report, ReportOptions
from .report import build_report as _build_report
from .sources import Panel, read_demo, read_files
from .store import ImportPlan, Workspace, declarations_of
from .store import import_surveys as _import_surveys
from .survey import ReadOptions
from .survey import read_surveys as _read_surveys

if TYPE_CHECKING:
    from .fastpath import FastImport


def read_surveys(
    files: Sequence[str | Path], survey: str | None = None, year: int | None = None
) -> pd.DataFrame:
    """Read and validate survey CSVs into one tidy frame: one observation per row."""
    return _read_surveys(files, ReadOptions(year=year, survey=survey))


def read(files: Sequence[str | Path], survey: str | None = None, year: int | None = None) -> Panel:
    """Read survey CSVs and match markets across them (a `Panel`, ready for `build_report`)."""
    return read_files(files, ReadOptions(year=year, survey=survey))


def demo() -> Panel:
    """The bundled demo data (calibrated illustrative; see data/README.md)."""
    return read_demo()


def workspace(path: str | Path) -> Panel:
    """Everything imported into a workspace database."""
    with Workspace.open(path) as opened:
        return opened.panel()


def import_surveys(
    files: Sequence[str | Path],
    db: str | Path,
    survey: str | None = None,
    year: int | None = None,
    *,
    replace: bool = False,
    strict: bool = False,
    dry_run: bool = False,
    title: str | None = None,
    measure: str | None = None,
    known_markets: int | None = None,
    compare: str | None = None,
) -> ImportPlan | FastImport:
    """Validate survey CSVs and add them to the workspace database `db` (made if new) in one
    transaction, as `marketdelta import` does; `.summary()` of the result says what was added,
    replaced and merged. `title`, `measure`, `known_markets` and `compare` declare the
    `survey`'s facts. Bad files raise `InputError`, and the workspace is left as it was."""
    declarations = declarations_of(survey, title, measure, known_markets, compare)
    read, path = ReadOptions(year=year, survey=survey), Path(db)
    options = {"replace": replace, "strict": strict, "dry_run": dry_run}
    with importing_early(files, path, year, **options) as early:
        return _import_surveys(files, path, read, **options, declarations=declarations, early=early)


def build_report(panel: Panel, **options) -> Report:
    """Every figure for one survey and period; options as `ReportOptions` (survey, start, end,
    min_change, top, by, compare, measure, universe, contributors)."""
    return _build_report(panel, ReportOptions(**options))


def draw(kind: str, result: Report, ax: Axes) -> Axes:
    """Draw one chart kind (series, contributors, concentration, map, provinces) onto `ax`."""
    charts.DRAWERS[kind](ax, chart_data(kind, result))
    return ax
