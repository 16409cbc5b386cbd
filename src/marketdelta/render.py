"""Rendering a report: Rich tables for the terminal, Markdown, CSV and JSON.

The terminal and Markdown views are built from the same list of `Section`s, so they always
show the same figures.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

import pandas as pd

from .report import Report

TERMINAL_ROWS = 10
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class Section:
    title: str
    columns: list[str]
    rows: list[list[str]]
    numeric: set[int] = field(default_factory=set)
    more: int = 0
    note: str | None = None


def m2(value: float | None, sign: bool = False) -> str:
    if value is None or pd.isna(value):
        return "–"
    text = f"{value:+,.0f}" if sign else f"{value:,.0f}"
    return text if float(value).is_integer() else (f"{value:+,.1f}" if sign else f"{value:,.1f}")


def percent(value: float | None) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.1%}"


def headline(report: Report) -> str:
    """One sentence a write-up can quote."""
    t = report.totals
    years = report.end - report.start
    text = (
        f"Net change in {report.measure_label}, {report.start}→{report.end}: "
        f"{m2(t.net_m2, sign=True)} m² over {len(report.markets)} markets in {report.towns} towns"
    )
    if t.avg_annual_net_m2 is not None:
        text += f" ({m2(t.avg_annual_net_m2, sign=True)} m² a year over {years} years)"
    text += "."
    c = report.compare
    if c is not None and c.decline is not None and c.peak_year is not None:
        direction = "below" if c.decline >= 0 else "above"
        text += (
            f" That average is {abs(c.decline):.1%} {direction} the {c.peak_year} peak of "
            f"{m2(c.peak_gross_additions_m2)} m² gross additions in the {c.survey} survey"
        )
        text += f" (note: this {c.caveat})." if c.caveat else "."
    return text


def sections(report: Report, cap: int | None = TERMINAL_ROWS) -> list[Section]:
    """The report's tables, in reading order; `cap` limits long lists (None: no limit)."""
    found = [
        _change(report),
        _counts(report),
        _closures(report, cap),
        _contributors(report, cap),
        _annual(report),
        _coverage(report),
    ]
    if report.breakdown is not None:
        found.append(_breakdown(report))
    return [s for s in found if s is not None]


def _change(report: Report) -> Section:
    t = report.totals
    rows = [
        [f"Area at baseline ({report.start}, or first observation)", m2(t.start_m2)],
        [f"Area at end (latest observation to {report.end})", m2(t.end_m2)],
        ["Gross additions", m2(t.gross_additions_m2)],
        ["Gross reductions", m2(t.gross_reductions_m2)],
        ["Net change", m2(t.net_m2, sign=True)],
        ["Average net change a year", m2(t.avg_annual_net_m2, sign=True)],
        ["Reallocation (additions + reductions)", m2(t.reallocation_m2)],
        ["Excess reallocation (reallocation − |net|)", m2(t.excess_reallocation_m2)],
    ]
    return Section(
        f"Change in {report.measure_label} (m²), {report.start}→{report.end}",
        ["Figure", "m²"],
        rows,
        {1},
    )


def _counts(report: Report) -> Section:
    c = report.counts
    threshold = f"changes over {m2(report.min_change)} m²" if report.min_change else "any change"
    rows = [
        ["Increased", str(c.increased), "of which opened", str(c.opened)],
        ["Decreased", str(c.decreased), "of which closed", str(c.closed)],
        ["Unchanged", str(c.unchanged), "", ""],
        ["All markets", str(len(report.markets)), "", ""],
    ]
    return Section(
        "Direction of change",
        ["Markets", "n", "", "n"],
        rows,
        {1, 3},
        note=f"Counted as a change: {threshold} (--min-change).",
    )


def _closures(report: Report, cap: int | None) -> Section | None:
    table = report.closure_table()
    if table.empty:
        return None
    shown = table if cap is None else table.head(cap)
    rows = [
        [
            row.market,
            _blank(row.town),
            _coordinates(row.lat, row.lon),
            m2(row.area_before_m2),
            f"{row.last_open_year} vs {row.closed_by_year}",
        ]
        for row in shown.itertuples()
    ]
    return Section(
        "Closures",
        ["Market", "Town", "Coordinates", "Stall area before (m²)", "Imagery compared"],
        rows,
        {3},
        more=len(table) - len(shown),
    )


def _contributors(report: Report, cap: int | None) -> Section:
    listed = report.contributor_rows()
    shown = listed if cap is None else listed.head(cap)
    net, additions = report.totals.net_m2, report.totals.gross_additions_m2
    rows = [
        [
            str(rank),
            row.market,
            _blank(row.town),
            m2(row.change_m2, sign=True),
            percent(row.change_m2 / net) if net > 0 else "–",
            percent(row.change_m2 / additions) if additions > 0 and row.change_m2 > 0 else "–",
            row.direction,
        ]
        for rank, row in enumerate(shown.itertuples(), 1)
    ]
    top, k = report.top, report.top.k
    conc = report.concentration
    note = (
        f"Top {k}: {m2(top.change_m2, sign=True)} m², {percent(top.share_of_net)} of net growth "
        f"and {percent(top.share_of_additions)} of gross additions. "
        f"HHI of additions {conc.hhi_additions or 0:,.0f}; Gini of additions "
        f"{_decimal(conc.gini_additions)}, of end areas {_decimal(conc.gini_end_area)}."
    )
    if report.totals.net_m2 <= 0:
        note += " (No share of net growth: the net change is not positive.)"
    return Section(
        "Contributors (largest change first)",
        ["#", "Market", "Town", "Δ m²", "% of net", "% of adds", "Class"],
        rows,
        {0, 3, 4, 5},
        more=len(listed) - len(shown),
        note=note,
    )


def _annual(report: Report) -> Section:
    rows = [
        [
            str(row.year),
            m2(row.gross_additions_m2),
            m2(row.gross_reductions_m2),
            m2(row.net_m2, sign=True),
            str(row.markets_observed),
        ]
        for row in report.annual.itertuples()
    ]
    peak = report.peak
    note = (
        f"Peak of gross additions: {peak.year} ({m2(peak.gross_additions_m2)} m²). "
        "Each market is compared with its previous observation; the nets add up to the "
        "period's net change."
        if peak.year
        else None
    )
    return Section(
        "Annual series",
        ["Year", "Gross additions", "Gross reductions", "Net", "Markets observed"],
        rows,
        {1, 2, 3, 4},
        note=note,
    )


def _coverage(report: Report) -> Section:
    rows = [
        ["Markets", str(len(report.markets))],
        ["Towns", str(report.towns)],
        ["Provinces", str(report.provinces)],
    ]
    if report.universe is not None:
        rows.append(
            [
                f"Share of {report.universe.known_markets} known markets",
                percent(report.universe.share),
            ]
        )
    rows += [
        [f"Towns with latest imagery from {year}", str(n)]
        for year, n in report.latest_imagery.items()
    ]
    return Section("Coverage and imagery vintage", ["", "n"], rows, {1})


def _breakdown(report: Report) -> Section:
    table = report.breakdown
    assert table is not None
    rows = [
        [
            str(row.group),
            str(row.markets),
            m2(row.start_m2),
            m2(row.end_m2),
            m2(row.gross_additions_m2),
            m2(row.gross_reductions_m2),
            m2(row.net_m2, sign=True),
            f"{row.increased}/{row.decreased}/{row.unchanged}",
        ]
        for row in table.itertuples()
    ]
    return Section(
        f"By {report.by}",
        [
            str(report.by).capitalize(),
            "Markets",
            "Start",
            "End",
            "Additions",
            "Reductions",
            "Net",
            "Up/down/same",
        ],
        rows,
        {1, 2, 3, 4, 5, 6},
    )


def _blank(value: object) -> str:
    return "" if value is None or pd.isna(value) else str(value)


def _decimal(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _coordinates(lat: float, lon: float) -> str:
    return "" if pd.isna(lat) else f"{lat:.6f}, {lon:.6f}"


def title(report: Report) -> str:
    name = report.survey.title or report.survey.name
    return f"{name} — survey '{report.survey.name}', {report.start}→{report.end}"


def print_report(report: Report, console) -> None:
    """Rich tables on the given console. Every text is printed as written: a name like
    `Hoeryong [old site]` is not rich markup (nor `:x:` an emoji code)."""
    from rich.table import Table
    from rich.text import Text

    console.print(Text(title(report), style="bold"))
    console.print(Text(headline(report)))
    for section in sections(report):
        table = Table(title=Text(section.title), title_justify="left", title_style="bold")
        for i, column in enumerate(section.columns):
            numeric = i in section.numeric
            table.add_column(column, justify="right" if numeric else "left", no_wrap=numeric)
        for row in section.rows:
            table.add_row(*map(Text, row))
        if section.more:
            where = min(set(range(len(section.columns))) - section.numeric)
            filler = [""] * len(section.columns)
            filler[where] = f"… and {section.more} more"
            table.add_row(*map(Text, filler))
        console.print()
        console.print(table)
        if section.note:
            console.print(Text(section.note, style="dim"))


def to_markdown(report: Report) -> str:
    """The headline sentence, then every table, ready to paste into a post."""
    parts = [f"## {_md_text(title(report))}", "", _md_text(headline(report))]
    for section in sections(report, cap=None):
        parts += ["", f"### {section.title}", ""]
        parts.append("| " + " | ".join(section.columns) + " |")
        parts.append(
            "|"
            + "|".join(
                "---:" if i in section.numeric else "---" for i in range(len(section.columns))
            )
            + "|"
        )
        parts += ["| " + " | ".join(map(_md_text, row)) + " |" for row in section.rows]
        if section.note:
            parts += ["", section.note]
    return "\n".join(parts) + "\n"


def _md_text(text: str) -> str:
    """`text` as Markdown shows it as written: a name like `A*B [old]` is not emphasis or a
    link, nor a `|` the end of a table cell."""
    return _MARKDOWN_SPECIALS.sub(r"\\\g<0>", text)


_MARKDOWN_SPECIALS = re.compile(r"[\\`*_\[\]<>|]")


def to_csv(report: Report) -> str:
    """One row per market; text cells that a spreadsheet would run as a formula are quoted.
    Written by Arrow, which puts every text cell in double quotes and writes a million markets
    in ≈ 1 s (pandas' writer took ≈ 12 s)."""
    import pyarrow as pa
    import pyarrow.csv as arrow_csv

    frame = report.to_frame()
    text_columns = frame.select_dtypes(include=["object", "string"]).columns
    safe = frame.assign(**{c: neutralise_formulas(frame[c]) for c in text_columns})
    rows = pa.BufferOutputStream()
    arrow_csv.write_csv(
        pa.Table.from_pandas(safe, preserve_index=False),
        rows,
        arrow_csv.WriteOptions(include_header=False),
    )
    return ",".join(safe.columns) + "\n" + rows.getvalue().to_pybytes().decode("utf-8")


def neutralise_formulas(values: pd.Series) -> pd.Series:
    """Prefix a quote to cells starting with = + - @ so spreadsheets show them as text."""
    text = values.astype("string")
    risky = text.str.startswith(FORMULA_PREFIXES).fillna(False)
    return text.mask(risky, "'" + text)


def to_json(report: Report) -> str:
    """The report as indented JSON, each record of a list on one line: as readable as fully
    indented JSON, and written by the json module's C functions, which a million markets need."""
    return _dumps(report.document(RecordColumns(report.closure_columns())), "") + "\n"


@dataclass(frozen=True)
class RecordColumns:
    """A list of flat records held as a list of values per key: `_dumps` encodes it a column
    at a time (64,000 closures as dicts, encoded one by one, took ≈ 0.8 s; this ≈ 0.25 s)."""

    columns: dict[str, list]


def _dumps(value, indent: str) -> str:
    inner = indent + "  "
    if isinstance(value, RecordColumns):
        return _record_lines(value.columns, indent)
    if isinstance(value, dict) and value and not _flat(value):
        items = (f"{inner}{_compact(k)}: {_dumps(v, inner)}" for k, v in value.items())
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(value, list) and value and not all(map(_scalar, value)):
        items = (f"{inner}{_dumps(v, inner)}" for v in value)
        return "[\n" + ",\n".join(items) + f"\n{indent}]"
    return _compact(value)


def _compact(value) -> str:
    return _ENCODER.encode(value)


def _record_lines(columns: dict[str, list], indent: str) -> str:
    """What `_dumps` writes for the list of records `columns` holds, one record a line:
    each column's `"key": value` pairs are made at once, then joined a record at a time."""
    if not columns or not len(next(iter(columns.values()))):
        return "[]"
    pairs = [
        list(map(f"{_compact(key)}: ".__add__, _column_json(values)))
        for key, values in columns.items()
    ]
    pairs[0] = list(map(f"{indent}  {{".__add__, pairs[0]))
    pairs[-1] = [pair + "}" for pair in pairs[-1]]
    return "[\n" + ",\n".join(map(", ".join, zip(*pairs, strict=True))) + f"\n{indent}]"


def _column_json(values: list) -> list[str]:
    """Each value as JSON; a column of one type is encoded by one C function."""
    kinds = set(map(type, values))
    if len(kinds) == 1:
        return list(map(_SCALAR_JSON.get(kinds.pop(), _compact), values))
    return [_SCALAR_JSON.get(type(v), _compact)(v) for v in values]


def _finite_json(value: float) -> str:
    return float.__repr__(value) if math.isfinite(value) else _compact(value)


# The json module's text for each type of scalar, without its per-call set-up.
_SCALAR_JSON = {
    type(None): lambda _: "null",
    str: json.encoder.encode_basestring,
    int: int.__repr__,
    float: _finite_json,
}


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": "))


def _scalar(value) -> bool:
    return not isinstance(value, dict | list)


def _flat(record: dict) -> bool:
    """A record printed on one line: scalars only (lists of scalars too)."""
    for value in record.values():
        if isinstance(value, dict) or (isinstance(value, list) and not all(map(_scalar, value))):
            return False
    return True
