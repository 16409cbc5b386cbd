"""Publication figures, drawn from a `Report` (never from raw data).

Each `draw_*` function draws onto a matplotlib `Axes` you give it, so the figures can be
composed in a notebook; `figure(kind, report)` makes a standalone figure and `save` writes it
as PNG, SVG or PDF, byte-for-byte reproducible (no timestamps, fixed SVG ids). The object API
only: no pyplot, no global state.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Text
from matplotlib.ticker import FuncFormatter

from . import metrics
from .__about__ import __version__
from .report import MEASURE_LABELS, Report

KINDS = ("series", "contributors", "concentration", "map", "provinces")
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
SHORT_LABELS = {
    "stall": "covered stalls only",
    "open": "open-air space",
    "total": "all market space",
}
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


def _source_line(report: Report, extra: str = "") -> str:
    origin = {
        "demo": "bundled demo data (calibrated illustrative; see data/README.md)",
        "files": "survey files",
    }.get(report.origin, report.origin)
    return f"Source: {origin}{extra}. Drawn with marketdelta {__version__}."


# ------------------------------------------------------------------------------ series


def draw_series(ax: Axes, report: Report) -> None:
    """Annual gross additions: the comparison survey's long series (e.g. all market space,
    2011-2021) and this survey's (e.g. covered stalls, 2021-2025) side by side, the change
    of measure shaded, the peak annotated, and this period's average annual net as a line."""
    own = report.annual
    other = report.compare.annual if report.compare is not None else None
    two = other is not None and not other.empty
    width = 0.4 if two else 0.7
    label_own = f"{SHORT_LABELS[report.measure]} (survey '{report.survey.name}')"
    if two:
        assert report.compare is not None
        label_other = f"{SHORT_LABELS[report.compare.measure]} (survey '{report.compare.survey}')"
        overlap = set(other["year"]) & set(own["year"])
        shift_other = np.where(other["year"].isin(overlap), -width / 2, 0.0)
        shift_own = np.where(own["year"].isin(overlap), width / 2, 0.0)
        bars = ax.bar(
            other["year"] + shift_other,
            other["gross_additions_m2"],
            width,
            color=BLUE,
            label=f"Gross additions: {label_other}",
        )
        _label_bars(ax, bars)
        _shade_change_of_measure(ax, own, report)
    else:
        shift_own = np.zeros(len(own))
    bars = ax.bar(
        own["year"] + shift_own,
        own["gross_additions_m2"],
        width,
        color=ORANGE,
        label=f"Gross additions: {label_own}",
    )
    _label_bars(ax, bars)
    if not two:
        ax.plot(own["year"], own["net_m2"], "o-", color=VERMILLION, label="Net change", lw=1.5)
    avg = report.totals.avg_annual_net_m2
    if avg is not None:
        ax.hlines(
            avg,
            report.start + 0.5,
            report.end + 0.5,
            colors=VERMILLION,
            linestyles="--",
            lw=1.6,
            label=f"Average annual net {report.start}-{report.end}: {avg:,.0f} m²",
        )
    _annotate_peak(ax, report, other if two else own)
    ax.set_ylabel("m² a year")
    ax.yaxis.set_major_formatter(FuncFormatter(thousands))
    years = sorted(set(own["year"]) | (set(other["year"]) if two else set()))
    ax.set_xticks(years)
    ax.set_xticklabels([str(y) for y in years], rotation=0)
    ax.set_xlim(min(years) - 0.7, max(years) + 0.7)
    ax.grid(axis="x", visible=False)
    ax.set_ylim(0, ax.get_ylim()[1] * 1.3)
    ax.legend(loc="upper left", fontsize=8)


def _label_bars(ax: Axes, bars) -> None:
    labels = [f"{h:,.0f}" if h > 0 else "" for h in (b.get_height() for b in bars)]
    ax.bar_label(bars, labels=labels, padding=2, fontsize=7, color="#333333")


def _shade_change_of_measure(ax: Axes, own: pd.DataFrame, report: Report) -> None:
    start = report.start + 0.5
    ax.axvspan(start, own["year"].max() + 0.7, color="#F3F3F3", zorder=0)
    ax.axvline(start, color="#666666", lw=1, ls=":", zorder=1)
    ax.text(
        start + 0.1,
        0.97,
        f"from {report.start}: {MEASURE_LABELS[report.measure]} only",
        transform=ax.get_xaxis_transform(),
        ha="left",
        va="top",
        fontsize=8,
        color="#444444",
    )


def _annotate_peak(ax: Axes, report: Report, annual: pd.DataFrame) -> None:
    peak = metrics.peak(annual)
    if peak.year is None:
        return
    is_other = report.compare is not None and annual is report.compare.annual
    x = peak.year - (0.2 if is_other and peak.year in set(report.annual["year"]) else 0)
    ax.annotate(
        f"{peak.year} peak: {peak.gross_additions_m2:,.0f} m²",
        xy=(x, peak.gross_additions_m2),
        xytext=(-14, 22),
        textcoords="offset points",
        ha="right",
        fontsize=8,
        fontweight="bold",
        arrowprops={"arrowstyle": "-", "color": "#333333", "lw": 0.8},
    )


# ------------------------------------------------------------------------ contributors


def draw_contributors(ax: Axes, report: Report, n: int = 10) -> None:
    """The markets with the largest gains and losses, closures marked."""
    ranked = report.ranked()
    gains = ranked[ranked["change_m2"] > 0].head(n)
    losses = ranked[ranked["change_m2"] < 0].tail(n)
    shown = pd.concat([gains, losses]).iloc[::-1]
    colours = [CLASS_COLOURS[d] for d in shown["direction"]]
    labels = [
        f"{row.market} ({row.town})"
        if isinstance(row.town, str) and row.town not in row.market
        else str(row.market)
        for row in shown.itertuples()
    ]
    y = np.arange(len(shown))
    bars = ax.barh(y, shown["change_m2"], color=colours, height=0.7)
    ax.bar_label(
        bars,
        labels=[
            f"{v:+,.0f}" + (" closed" if d == "closed" else "")
            for v, d in zip(shown["change_m2"], shown["direction"], strict=True)
        ],
        padding=3,
        fontsize=7,
    )
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=7.5)
    ax.axvline(0, color="#333333", lw=0.8)
    ax.xaxis.set_major_formatter(FuncFormatter(thousands))
    ax.set_xlabel(f"Change in {MEASURE_LABELS[report.measure]}, {report.start}-{report.end} (m²)")
    ax.grid(axis="y", visible=False)
    low, high = ax.get_xlim()
    ax.set_xlim(low * 1.25 if low < 0 else low, high * 1.18)
    present = [c for c in CLASS_COLOURS if c in set(shown["direction"])]
    ax.legend(
        handles=[Patch(color=CLASS_COLOURS[c], label=c) for c in present],
        loc="lower right",
        fontsize=8,
    )


def contributors_title(report: Report) -> str:
    top = report.top
    share = (
        f"{top.share_of_net:.1%} of net growth"
        if top.share_of_net is not None
        else f"{top.share_of_additions or 0:.1%} of gross additions"
    )
    return f"The top {top.k} markets account for {top.change_m2:,.0f} m², {share}"


# ----------------------------------------------------------------------- concentration


def draw_concentration(ax: Axes, report: Report) -> None:
    """Lorenz curve of gains across markets, with the line of equality."""
    gains = report.markets["change_m2"].clip(lower=0)
    curve = metrics.lorenz_curve(gains)
    ax.plot([0, 1], [0, 1], color=GREY, ls="--", lw=1, label="Equal growth in every market")
    ax.plot(
        curve["share_of_markets"],
        curve["share_of_total"],
        color=BLUE,
        lw=2,
        label="Markets, smallest gain first",
    )
    ax.fill_between(curve["share_of_markets"], curve["share_of_total"], curve["share_of_markets"],
                    color=BLUE, alpha=0.08)  # fmt: skip
    gini = report.concentration.gini_additions
    top = report.top
    markets = len(report.markets)
    lines = [f"Gini of gains: {gini:.2f}" if gini is not None else "No gains"]
    if top.share_of_additions is not None:
        lines.append(
            f"Top {top.k} of {markets} markets ({top.k / markets:.1%}): "
            f"{top.share_of_additions:.1%} of gross additions"
        )
    if top.share_of_net is not None:
        lines.append(f"and {top.share_of_net:.1%} of net growth")
    ax.text(0.04, 0.95, "\n".join(lines), transform=ax.transAxes, va="top", fontsize=9)
    x = 1 - top.k / max(markets, 1)
    y = 1 - (top.share_of_additions or 0)
    ax.annotate(
        f"top {top.k}",
        xy=(x, y),
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


def draw_map(ax: Axes, report: Report) -> None:
    """Markets by coordinates, sized by end area, coloured by class; closures named."""
    placed = report.markets.dropna(subset=["lat", "lon"])
    if placed.empty:
        ax.text(0.5, 0.5, "No coordinates in the data", ha="center", transform=ax.transAxes)
        return
    scale = max(float(placed["end_m2"].max()), float(placed["baseline_m2"].max()), 1.0)
    size = 8 + 220 * np.sqrt(np.maximum(placed["end_m2"], placed["baseline_m2"]) / scale)
    order = ["unchanged", "decreased", "increased", "opened", "closed"]
    for direction in order:
        subset = placed["direction"] == direction
        if subset.any():
            ax.scatter(
                placed.loc[subset, "lon"],
                placed.loc[subset, "lat"],
                s=size[subset],
                c=CLASS_COLOURS[direction],
                alpha=0.55 if direction == "unchanged" else 0.85,
                edgecolors="white",
                linewidths=0.5,
                label=f"{direction} ({int(subset.sum())})",
                zorder=3 if direction != "unchanged" else 2,
            )
    for row in placed[placed["direction"] == "closed"].itertuples():
        ax.annotate(
            row.market,
            (row.lon, row.lat),
            xytext=(6, 4),
            textcoords="offset points",
            fontsize=7.5,
            color=VERMILLION,
            fontweight="bold",
        )
    ax.set_aspect(1 / np.cos(np.radians(placed["lat"].mean())))
    pad_lat = (placed["lat"].max() - placed["lat"].min()) * 0.06 + 0.05
    pad_lon = (placed["lon"].max() - placed["lon"].min()) * 0.06 + 0.05
    ax.set_xlim(placed["lon"].min() - pad_lon, placed["lon"].max() + pad_lon * 2.5)
    ax.set_ylim(placed["lat"].min() - pad_lat, placed["lat"].max() + pad_lat)
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


def draw_provinces(ax: Axes, report: Report) -> None:
    """Net change by province (needs a report built with `by='province'`)."""
    table = report.breakdown
    if table is None:
        table = metrics.breakdown(report.markets, report.markets["province"])
    table = table.sort_values("net_m2")
    colours = [BLUE if v >= 0 else ORANGE for v in table["net_m2"]]
    y = np.arange(len(table))
    ax.barh(y, table["net_m2"], color=colours, height=0.65)
    ax.set_yticks(y)
    ax.set_yticklabels(table["group"].astype(str))
    span = float(table["net_m2"].abs().max()) or 1.0
    for position, (net, markets) in enumerate(zip(table["net_m2"], table["markets"], strict=True)):
        ax.text(max(net, 0) + span * 0.01, position, f"{net:+,.0f}  ({markets} markets)",
                va="center", fontsize=7.5)  # fmt: skip
    ax.axvline(0, color="#333333", lw=0.8)
    ax.xaxis.set_major_formatter(FuncFormatter(thousands))
    ax.set_xlabel(
        f"Net change in {MEASURE_LABELS[report.measure]}, {report.start}-{report.end} (m²)"
    )
    ax.grid(axis="y", visible=False)
    low, high = ax.get_xlim()
    ax.set_xlim(min(low * 1.1, 0), high * 1.35)


# ------------------------------------------------------------------------------ figures


def _default_title(kind: str, report: Report) -> str:
    span = f"{report.start}-{report.end}"
    if kind == "series":
        if report.compare is not None and not report.compare.annual.empty:
            first = int(report.compare.annual["year"].min())
            return f"New market area per year, {first}-{report.end}"
        return f"Annual change in {MEASURE_LABELS[report.measure]}, {span}"
    if kind == "contributors":
        return contributors_title(report)
    if kind == "concentration":
        return f"How concentrated was growth? Gains across {len(report.markets)} markets, {span}"
    if kind == "map":
        return f"{len(report.markets)} markets in {report.towns} towns: change {span}"
    return f"Net change by province, {span}"


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


def figure(
    kind: str,
    report: Report,
    title: str | None = None,
    size: tuple[float, float] | None = None,
    bars: int = 10,
) -> Figure:
    """A standalone figure of one kind, with a title and a source line; `bars` is how many
    gainers and losers the contributors chart shows."""
    if kind not in DRAWERS:
        raise ValueError(f"unknown chart {kind!r}; choose one of {', '.join(KINDS)}")
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=size or SIZES[kind], layout="constrained")
        ax = fig.add_subplot()
        if kind == "contributors":
            draw_contributors(ax, report, n=bars)
        else:
            DRAWERS[kind](ax, report)
        ax.set_title(title or _default_title(kind, report), loc="left")
        extra = ""
        if kind == "series" and report.compare is not None and report.compare.caveat:
            extra = f"; note the change of measure: the line {report.compare.caveat}"
        width = fig.get_figwidth() * 0.98
        fig.text(0.01, 0.005, wrapped(_source_line(report, extra), width, SOURCE_FONT_SIZE),
                 fontsize=SOURCE_FONT_SIZE, color="#555555", ha="left", va="bottom")  # fmt: skip
        fig.get_layout_engine().set(h_pad=0.25)
    return fig


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
