"""What a survey file's first line says: its delimiter and its column names.

Shared by the reference reader (`survey.py`) and the fast reader (`fastread.py`). No pandas:
`marketdelta report` and `import` look at a large file's header before they import pandas.
"""

from __future__ import annotations

from pathlib import Path

MAX_COLUMNS = 10_000
HEADER_SYNONYMS = {"latitude": "lat", "longitude": "lon", "lng": "lon", "coords": "coordinates"}

# Columns the fast path leaves to the reference reader: a market id can merge spellings, the
# others hold a survey per row, a date or two numbers in one cell.
NOT_PLAIN = {"market_id", "coordinates", "survey", "imagery_date"}


def sniff_delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def plain_long_header(path: Path, year: int | None) -> tuple[list[str], str] | None:
    """The normalised column names and the delimiter of a plain long-layout file (one row per
    market and year, no quoted header, no column the fast path leaves to the reference
    reader), else None. `year` is the year given for files without a year column."""
    with path.open("rb") as handle:
        first = handle.readline(1 << 20)
    try:
        line = first.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError:
        return None
    delimiter = sniff_delimiter(line)
    names = [HEADER_SYNONYMS.get(h, h) for h in (h.strip().lower() for h in line.split(delimiter))]
    names = ["_".join(n.split()) for n in names]
    if (
        '"' in line
        or len(names) > MAX_COLUMNS
        or len(set(names)) != len(names)
        or not {"market", "stall_area_m2"} <= set(names)
        or ("year" not in names and year is None)
        or NOT_PLAIN & set(names)
        or not all(names)
    ):
        return None
    return names, delimiter
