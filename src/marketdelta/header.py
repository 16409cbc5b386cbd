"""What a survey file's first line says: its delimiter, its column names and, in a wide file,
which columns are years and whether the reference reader refuses one (`wide_column_problem`).

Shared by the reference reader (`survey.py`) and the fast reader (`fastread.py`). No pandas:
`marketdelta report` and `import` look at a large file's header before they import pandas.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

MAX_COLUMNS = 10_000
FIRST_YEAR = 1960
YEAR_HEADER = re.compile(r"^\d{4}$")  # a wide layout's column of one year's areas
# A column that looks like a year but is not one (a wide file would silently lose its areas).
YEARLIKE = re.compile(r"^\D{0,3}(19|20)\d{2}\D{0,3}$|^\d{5,6}$")
HEADER_SYNONYMS = {"latitude": "lat", "longitude": "lon", "lng": "lon", "coords": "coordinates"}

# Columns the fast path leaves to the reference reader: a market id can merge spellings, the
# others hold a survey per row, a date or two numbers in one cell.
NOT_PLAIN = {"market_id", "coordinates", "survey", "imagery_date"}


def sniff_delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def column_names(line: str) -> tuple[list[str], str]:
    """A plain header line's column names, normalised as the fast reader takes them (lower
    case, synonyms, inner spaces as `_`), and its delimiter."""
    delimiter = sniff_delimiter(line)
    names = [HEADER_SYNONYMS.get(h, h) for h in (h.strip().lower() for h in line.split(delimiter))]
    return ["_".join(n.split()) for n in names], delimiter


def year_columns(names: list[str]) -> list[str]:
    """The year columns of a wide-layout header (one row per market, one column of areas per
    year); none for a long layout (one row per market and year)."""
    if "stall_area_m2" in names:
        return []
    return [n for n in names if YEAR_HEADER.match(n)]


def plain_header(path: Path, year: int | None) -> tuple[list[str], str] | None:
    """The normalised column names and the delimiter of a plain file, long or wide (no quoted
    header, no column the fast path leaves to the reference reader, nothing the reference
    reader refuses in a header), else None. `year` is the year given for files without a
    year column."""
    with path.open("rb") as handle:
        first = handle.readline(1 << 20)
    try:
        line = first.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError:
        return None
    names, delimiter = column_names(line)
    if (
        '"' in line
        or len(names) > MAX_COLUMNS
        or len(set(names)) != len(names)
        or "market" not in names
        or NOT_PLAIN & set(names)
        or not all(names)
    ):
        return None
    if year_columns(names):
        return (names, delimiter) if _plain_wide(names) else None
    if "stall_area_m2" not in names or ("year" not in names and year is None):
        return None
    return names, delimiter


def wide_column_problem(column: str) -> str | None:
    """Why a wide file's column (normalised) is refused, if it is: a year outside the possible
    years, or a name that looks like a year but is not one (its areas would be lost)."""
    if YEAR_HEADER.match(column):
        this_year = date.today().year
        if not FIRST_YEAR <= int(column) <= this_year:
            return f"year column outside {FIRST_YEAR}-{this_year}; fix the header"
    elif YEARLIKE.match(column):
        return (
            "column looks like a year but is not four digits, so its areas would be ignored; "
            "rename it to the year (e.g. 2022) or to a word"
        )
    return None


def _plain_wide(names: list[str]) -> bool:
    """Does the reference reader take this wide header as it is (no `year` column, no column
    refused), with its years in ASCII digits?"""
    return (
        "year" not in names
        and all(y.isascii() for y in year_columns(names))
        and not any(map(wide_column_problem, names))
    )
