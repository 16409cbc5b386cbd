"""Publication figures, drawn from the plain numbers and labels each one shows.

A chart's data (`SeriesChart`, `ContributorsChart`, ...) is made from a `Report` by
`chartdata.py`; this module draws it and never imports pandas, so a chart whose data was kept
between runs (`cache.py`) is drawn without it. Each `draw_*` function draws onto a matplotlib
`Axes` you give it, so the figures can be composed in a notebook; `draw(chart)` (or
`figure(kind, report)`) makes a standalone figure and `save` writes it as PNG, SVG or PDF,
byte-for-byte reproducible (no timestamps, fixed SVG ids). The object API only: no pyplot, no
global state.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import matplotlib
import numpy as np
from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Text
from matplotlib.ticker import FuncFormatter

from .__about__ import __version__

if TYPE_CHECKING:
    from .report import Report

FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
SOURCE_FONT_SIZE = 6.5

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
BLUE, ORANGE, VERMILLION, GREEN, SKY, PURPLE, GREY = (
    "#0072B2",
    "#E69F00",
    "#D55E00",
    "#009E73",
    "#56B4E9",
    "#CC79A7",
    "#8C8C8C",
)
CLASS_COLOURS = {
    "increased": BLUE,
    "opened": GREEN,
    "decreased": ORANGE,
    "closed": VERMILLION,
    "unchanged": GREY,
}
# Fonts with Hangul, for Korean names: matplotlib falls back to them glyph by glyph.
HANGUL_FONTS = (
    "Noto Sans CJK KR", "Noto Sans KR", "Source Han Sans KR", "NanumGothic", "NanumBarunGothic",
    "Malgun Gothic", "Apple SD Gothic Neo", "AppleGothic", "UnDotum", "Baekmuk Gulim",
)  # fmt: skip
_INSTALLED = {font.name for font in font_manager.fontManager.ttflist}
STYLE = {
    "font.family": ["DejaVu Sans", *(name for name in HANGUL_FONTS if name in _INSTALLED)],
    "font.size": 9,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#DDDDDD",
    "grid.linewidth": 0.6,
    "axes.axisbelow": True,
    "legend.frameon": False,
    "svg.hashsalt": "marketdelta",
    "svg.fonttype": "path",
    "text.parse_math": False,  # a name like "A $x_1$ b" is text, not TeX
}


def wrapped(text: str, width_inches: float, font_size: float) -> str:
    """`text` broken into lines that fit `width_inches` at `font_size` points. matplotlib's own
    `wrap=True` measures the text at every draw and costs a tenth of a second a figure; an
    average glyph of DejaVu Sans is narrower than 0.6 em, so this errs on the short side."""
    characters = max(20, int(width_inches * 72 / (font_size * 0.6)))
    return textwrap.fill(text, characters, break_on_hyphens=False)


def missing_characters(fig: Figure) -> str:
    """The characters of the figure's texts that none of its fonts has (they are drawn as
    boxes), e.g. Hangul names when no Korean font is installed."""
    text = "".join(t.get_text() for t in fig.findobj(Text))
    if text.isascii():
        return ""
    files = (font_manager.findfont(f, fallback_to_default=False) for f in STYLE["font.family"])
    fonts = [font_manager.get_font(file) for file in files]  # both cached by matplotlib
    return "".join(
        sorted(
            c
            for c in set(text)
            if not c.isascii()
            and not c.isspace()
            and not any(font.get_char_index(ord(c)) for font in fonts)  # 0: no glyph
        )
    )


def thousands(value: float, _position: object = None) -> str:
    return f"{value:,.0f}"


# --------------------------------------------------------------------- what charts show
# Plain lists, numbers and text (JSON as they stand): the title and source line are made with
# the data, as they name its figures.


@dataclass(frozen=True)
class Chart:
    """What every chart has: its kind, a title and a source line."""

    kind: ClassVar[str]
    title: str
    source: str


@dataclass(frozen=True)
class SeriesChart(Chart):
    """Annual gross additions of this survey (and of the survey it is compared with)."""

    kind: ClassVar[str] = "series"
    start: int
    end: int
    measure_label: str
    own_label: str
    own_years: list[int]
    own_gross_m2: list[float]
    own_net_m2: list[float]
    avg_annual_net_m2: float | None
    peak_year: int | None  # of the comparison's series when there is one
    peak_m2: float | None
    other_label: str | None = None
    other_years: list[int] | None = None
    other_gross_m2: list[float] | None = None


@dataclass(frozen=True)
class ContributorsChart(Chart):
    """The largest gains and losses, largest gain at the top."""

    kind: ClassVar[str] = "contributors"
    xlabel: str
    labels: list[str]
    change_m2: list[float]
    directions: list[str]


@dataclass(frozen=True)
class ConcentrationChart(Chart):
    """The Lorenz curve of gains and the top markets' shares."""

    kind: ClassVar[str] = "concentration"
    share_of_markets: list[float]
    share_of_gains: list[float]
    markets: int
    top_k: int
    gini: float | None
    top_share_of_additions: float | None
    top_share_of_net: float | None


@dataclass(frozen=True)
class MapChart(Chart):
    """The markets with coordinates."""

    kind: ClassVar[str] = "map"
    market: list[str]
    lat: list[float]
    lon: list[float]
    baseline_m2: list[float]
    end_m2: list[float]
    directions: list[str]


@dataclass(frozen=True)
class ProvincesChart(Chart):
    """Net change by province, smallest first."""

    kind: ClassVar[str] = "provinces"
    xlabel: str
    provinces: list[str]
    net_m2: list[float]
    markets: list[int]


CHARTS: dict[str, type[Chart]] = {
    c.kind: c
    for c in (SeriesChart, ContributorsChart, ConcentrationChart, MapChart, ProvincesChart)
}
KINDS = tuple(CHARTS)


# ------------------------------------------------------------------------------ series


def draw_series(ax: Axes, chart: SeriesChart) -> None:
    """Annual gross additions: the comparison survey's long series (e.g. all market space,
    2011-2021) and this survey's (e.g. covered stalls, 2021-2025) side by side, the change
    of measure shaded, the peak annotated, and this period's average annual net as a line."""
    if not chart.own_years and not chart.other_years:
        ax.text(0.5, 0.5, f"No annual change in {chart.start}-{chart.end}: it takes two survey "
                "years", ha="center", transform=ax.transAxes)  # fmt: skip
        ax.set_axis_off()
        return
    own_years = np.asarray(chart.own_years)
    two = bool(chart.other_years)
    width = 0.4 if two else 0.7
    shift_own = np.zeros(len(own_years))
    if two:
        other_years = np.asarray(chart.other_years)
        overlap = np.intersect1d(other_years, own_years)
        shift_other = np.where(np.isin(other_years, overlap), -width / 2, 0.0)
        shift_own = np.where(np.isin(own_years, overlap), width / 2, 0.0)
        bars = ax.bar(
            other_years + shift_other,
            chart.other_gross_m2,
            width,
            color=BLUE,
            label=f"Gross additions: {chart.other_label}",
        )
        _label_bars(ax, bars)
        _shade_change_of_measure(ax, chart)
    bars = ax.bar(
        own_years + shift_own,
        chart.own_gross_m2,
        width,
        color=ORANGE,
        label=f"Gross additions: {chart.own_label}",
    )
    _label_bars(ax, bars)
    if not two:
        ax.plot(own_years, chart.own_net_m2, "o-", color=VERMILLION, label="Net change", lw=1.5)
    avg = chart.avg_annual_net_m2
    if avg is not None:
        ax.hlines(
            avg,
            chart.start + 0.5,
            chart.end + 0.5,
            colors=VERMILLION,
            linestyles="--",
            lw=1.6,
            label=f"Average annual net {chart.start}-{chart.end}: {avg:,.0f} m²",
        )
    if chart.peak_year is not None:
        beside_own = two and chart.peak_year in chart.own_years  # the comparison's bar, left
        _annotate_peak(ax, chart.peak_year - (width / 2 if beside_own else 0), chart)
    ax.set_ylabel("m² a year")
    ax.yaxis.set_major_formatter(FuncFormatter(thousands))
    years = sorted(set(chart.own_years) | set(chart.other_years or ()))
    ax.set_xticks(years)
    ax.set_xticklabels([str(y) for y in years], rotation=0)
    ax.set_xlim(min(years) - 0.7, max(years) + 0.7)
    ax.grid(axis="x", visible=False)
    ax.set_ylim(0, ax.get_ylim()[1] * 1.3)
    ax.legend(loc="upper left", fontsize=8)


def _label_bars(ax: Axes, bars) -> None:
    labels = [f"{h:,.0f}" if h > 0 else "" for h in (b.get_height() for b in bars)]
    ax.bar_label(bars, labels=labels, padding=2, fontsize=7, color="#333333")


def _shade_change_of_measure(ax: Axes, chart: SeriesChart) -> None:
    start = chart.start + 0.5
    ax.axvspan(start, max(chart.own_years) + 0.7, color="#F3F3F3", zorder=0)
    ax.axvline(start, color="#666666", lw=1, ls=":", zorder=1)
    ax.text(
        start + 0.1,
        0.97,
        f"from {chart.start}: {chart.measure_label} only",
        transform=ax.get_xaxis_transform(),
        ha="left",
        va="top",
        fontsize=8,
        color="#444444",
    )


def _annotate_peak(ax: Axes, x: float, chart: SeriesChart) -> None:
    ax.annotate(
        f"{chart.peak_year} peak: {chart.peak_m2:,.0f} m²",
        xy=(x, chart.peak_m2),
        xytext=(-14, 22),
        textcoords="offset points",
        ha="right",
        fontsize=8,
        fontweight="bold",
        arrowprops={"arrowstyle": "-", "color": "#333333", "lw": 0.8},
    )


# ------------------------------------------------------------------------ contributors


def draw_contributors(ax: Axes, chart: ContributorsChart) -> None:
    """The markets with the largest gains and losses, closures marked."""
    change = np.asarray(chart.change_m2, dtype=float)
    y = np.arange(len(change))
    bars = ax.barh(y, change, color=[CLASS_COLOURS[d] for d in chart.directions], height=0.7)
    ax.bar_label(
        bars,
        labels=[
            f"{v:+,.0f}" + (" closed" if d == "closed" else "")
            for v, d in zip(chart.change_m2, chart.directions, strict=True)
        ],
        padding=3,
        fontsize=7,
    )
    ax.set_yticks(y)
    ax.set_yticklabels(chart.labels, fontsize=7.5)
    ax.axvline(0, color="#333333", lw=0.8)
    ax.xaxis.set_major_formatter(FuncFormatter(thousands))
    ax.set_xlabel(chart.xlabel)
    ax.grid(axis="y", visible=False)
    low, high = ax.get_xlim()
    ax.set_xlim(low * 1.25 if low < 0 else low, high * 1.18)
    present = [c for c in CLASS_COLOURS if c in set(chart.directions)]
    ax.legend(
        handles=[Patch(color=CLASS_COLOURS[c], label=c) for c in present],
        loc="lower right",
        fontsize=8,
    )


# ----------------------------------------------------------------------- concentration


def draw_concentration(ax: Axes, chart: ConcentrationChart) -> None:
    """Lorenz curve of gains across markets, with the line of equality."""
    ax.plot([0, 1], [0, 1], color=GREY, ls="--", lw=1, label="Equal growth in every market")
    x, y = chart.share_of_markets, chart.share_of_gains
    ax.plot(x, y, color=BLUE, lw=2, label="Markets, smallest gain first")
    ax.fill_between(x, y, x, color=BLUE, alpha=0.08)
    k, markets = chart.top_k, chart.markets
    lines = [f"Gini of gains: {chart.gini:.2f}" if chart.gini is not None else "No gains"]
    if chart.top_share_of_additions is not None:
        lines.append(
            f"Top {k} of {markets} markets ({k / markets:.1%}): "
            f"{chart.top_share_of_additions:.1%} of gross additions"
        )
    if chart.top_share_of_net is not None:
        lines.append(f"and {chart.top_share_of_net:.1%} of net growth")
    ax.text(0.04, 0.95, "\n".join(lines), transform=ax.transAxes, va="top", fontsize=9)
    ax.annotate(
        f"top {k}",
        xy=(1 - k / max(markets, 1), 1 - (chart.top_share_of_additions or 0)),
        xytext=(-40, 30),
        textcoords="offset points",
        fontsize=8,
        arrowprops={"arrowstyle": "->", "color": "#333333", "lw": 0.8},
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    percent = FuncFormatter(lambda v, _p: f"{v:.0%}")
    ax.xaxis.set_major_formatter(percent)
    ax.yaxis.set_major_formatter(percent)
    ax.set_xlabel("Share of markets")
    ax.set_ylabel("Share of gross additions")
    ax.legend(loc="center left", fontsize=8)


# --------------------------------------------------------------------------------- map


def draw_map(ax: Axes, chart: MapChart) -> None:
    """Markets by coordinates, sized by end area, coloured by class; closures named."""
    if not chart.market:
        ax.text(0.5, 0.5, "No coordinates in the data", ha="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    lat, lon = np.asarray(chart.lat, dtype=float), np.asarray(chart.lon, dtype=float)
    directions = np.asarray(chart.directions)
    larger = np.maximum(np.asarray(chart.end_m2, float), np.asarray(chart.baseline_m2, float))
    scale = float(np.nanmax([*chart.end_m2, *chart.baseline_m2], initial=1.0))
    size = 8 + 220 * np.sqrt(larger / scale)
    order = ["unchanged", "decreased", "increased", "opened", "closed"]
    for direction in order:
        subset = directions == direction
        if subset.any():
            ax.scatter(
                lon[subset],
                lat[subset],
                s=size[subset],
                c=CLASS_COLOURS[direction],
                alpha=0.55 if direction == "unchanged" else 0.85,
                edgecolors="white",
                linewidths=0.5,
                label=f"{direction} ({int(subset.sum())})",
                zorder=3 if direction != "unchanged" else 2,
            )
    for name, x, y, direction in zip(chart.market, lon, lat, directions, strict=True):
        if direction == "closed":
            ax.annotate(
                name,
                (x, y),
                xytext=(6, 4),
                textcoords="offset points",
                fontsize=7.5,
                color=VERMILLION,
                fontweight="bold",
            )
    ax.set_aspect(1 / np.cos(np.radians(lat.mean())))
    pad_lat = (lat.max() - lat.min()) * 0.06 + 0.05
    pad_lon = (lon.max() - lon.min()) * 0.06 + 0.05
    ax.set_xlim(lon.min() - pad_lon, lon.max() + pad_lon * 2.5)
    ax.set_ylim(lat.min() - pad_lat, lat.max() + pad_lat)
    ax.set_xlabel("Longitude (°E)")
    ax.set_ylabel("Latitude (°N)")
    handles, labels = ax.get_legend_handles_labels()
    size_handles = [
        Line2D([], [], ls="", marker="o", color=GREY, alpha=0.6,
               markersize=np.sqrt(8 + 220 * np.sqrt(a / scale)), label=f"{a:,.0f} m²")
        for a in (scale / 16, scale / 4, scale)
    ]  # fmt: skip
    ax.legend(
        handles=handles + size_handles,
        labels=labels + [h.get_label() for h in size_handles],
        loc="lower right",
        fontsize=7.5,
        labelspacing=1.1,
        borderpad=0.8,
    )


# --------------------------------------------------------------------------- provinces


def draw_provinces(ax: Axes, chart: ProvincesChart) -> None:
    """Net change by province."""
    net = np.asarray(chart.net_m2, dtype=float)
    y = np.arange(len(net))
    ax.barh(y, net, color=[BLUE if v >= 0 else ORANGE for v in net], height=0.65)
    ax.set_yticks(y)
    ax.set_yticklabels(chart.provinces)
    span = float(np.abs(net).max(initial=0.0)) or 1.0
    for position, (value, markets) in enumerate(zip(net, chart.markets, strict=True)):
        ax.text(max(value, 0) + span * 0.01, position, f"{value:+,.0f}  ({markets} markets)",
                va="center", fontsize=7.5)  # fmt: skip
    ax.axvline(0, color="#333333", lw=0.8)
    ax.xaxis.set_major_formatter(FuncFormatter(thousands))
    ax.set_xlabel(chart.xlabel)
    ax.grid(axis="y", visible=False)
    low, high = ax.get_xlim()
    ax.set_xlim(min(low * 1.1, 0), high * 1.35)


# ------------------------------------------------------------------------------ figures


DRAWERS: dict[str, Callable[..., None]] = {
    "series": draw_series,
    "contributors": draw_contributors,
    "concentration": draw_concentration,
    "map": draw_map,
    "provinces": draw_provinces,
}
SIZES = {
    "series": (10.0, 5.6),
    "contributors": (9.0, 7.0),
    "concentration": (7.0, 7.0),
    "map": (8.0, 8.0),
    "provinces": (9.0, 5.6),
}


def draw(chart: Chart, title: str | None = None, size: tuple[float, float] | None = None) -> Figure:
    """A standalone figure of one chart, with its title (or `title`) and its source line."""
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=size or SIZES[chart.kind], layout="constrained")
        ax = fig.add_subplot()
        DRAWERS[chart.kind](ax, chart)
        ax.set_title(title or chart.title, loc="left")
        width = fig.get_figwidth() * 0.98
        fig.text(0.01, 0.005, wrapped(chart.source, width, SOURCE_FONT_SIZE),
                 fontsize=SOURCE_FONT_SIZE, color="#555555", ha="left", va="bottom")  # fmt: skip
        fig.get_layout_engine().set(h_pad=0.25)
    return fig


def figure(
    kind: str,
    report: Report,
    title: str | None = None,
    size: tuple[float, float] | None = None,
    bars: int = 10,
) -> Figure:
    """A standalone figure of one kind drawn from a report; `bars` is how many gainers and
    losers the contributors chart shows."""
    from .chartdata import chart_data  # it imports pandas, which drawing does without

    return draw(chart_data(kind, report, bars), title, size)


def save(fig: Figure, path: str | Path, dpi: int = 200) -> Path:
    """Write PNG, SVG or PDF by the file's extension, with no timestamps in the file."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unknown extension; use .png, .svg or .pdf")
    metadata = {
        "png": {"Software": f"marketdelta {__version__}"},
        "svg": {"Date": None, "Creator": f"marketdelta {__version__}"},
        "pdf": {"CreationDate": None, "ModDate": None, "Creator": f"marketdelta {__version__}"},
    }[fmt]
    # The fastest zlib level: the same pixels, a file 15% larger, written 60 ms sooner.
    extra = {"pil_kwargs": {"compress_level": 1}} if fmt == "png" else {}
    with matplotlib.rc_context(STYLE):
        fig.savefig(path, format=fmt, dpi=dpi, metadata=metadata, **extra)
    return path
