"""Reading and validating survey CSV files.

A survey file is either *long* (one row per market and year, with a `stall_area_m2` column) or
*wide* (one row per market, one column per year). Both come out of `read_survey` as the same
tidy frame: one observation per row, with the file and line it came from.

Every cell is read as text first and checked here, so that a bad value is reported with its
file, line, column and value instead of surfacing later as a wrong number.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError, Problem
from .header import (
    FIRST_YEAR,
    HEADER_SYNONYMS,
    MAX_COLUMNS,
    sniff_delimiter,
    wide_column_problem,
    year_columns,
)

DEFAULT_SURVEY = "default"
MAX_AREA_M2 = 1_000_000.0
MAX_FILE_BYTES = 2 * 1024**3

MARKET_COLUMNS = ["market_id", "market", "town", "province", "lat", "lon"]
OBSERVATION_COLUMNS = [
    "survey",
    *MARKET_COLUMNS,
    "year",
    "stall_area_m2",
    "open_area_m2",
    "imagery_date",
    "source",
    "status",
    "notes",
    "file",
    "line",
]
KNOWN_COLUMNS = {
    "survey",
    "market_id",
    "market",
    "town",
    "province",
    "lat",
    "lon",
    "coordinates",
    "year",
    "stall_area_m2",
    "open_area_m2",
    "imagery_date",
    "source",
    "status",
    "notes",
}

# Shared with the DuckDB fast path (RE2 reads the same syntax).
NUMBER_PATTERN = r"^\+?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$|^\+?\.\d+$"
SIGNED_PATTERN = r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$"
_NUMBER = re.compile(NUMBER_PATTERN)
_SIGNED = re.compile(SIGNED_PATTERN)
_COORDINATES = re.compile(
    r"^\s*(?P<lat>[+-]?\d+(?:\.\d+)?)\s*°?\s*(?P<ns>[NSns])?\s*[,;\s]\s*"
    r"(?P<lon>[+-]?\d+(?:\.\d+)?)\s*°?\s*(?P<ew>[EWew])?\s*$"
)
_DATE = re.compile(r"^\d{4}(?:-\d{2}(?:-\d{2})?)?$")


@dataclass(frozen=True)
class ReadOptions:
    """What the command line adds to a file: the year for files without one, the survey name."""

    year: int | None = None
    survey: str | None = None


def read_surveys(sources: Sequence[str | Path], options: ReadOptions | None = None) -> pd.DataFrame:
    """Read and validate several survey files into one tidy frame of observations.

    All files are checked before anything is returned: an `InputError` lists every problem
    found in every file (up to a limit per file), so one run shows everything to fix. The
    files' cells are validated together, in one vectorised pass.
    """
    options = options or ReadOptions()
    tables, problems = [], []
    for source in sources:
        try:
            tables.append(_raw_table(source, options))
        except InputError as error:
            problems.extend(error.problems)
    if problems:
        raise InputError(problems)
    if not tables:
        return empty_observations()
    return _validate(pd.concat(tables, ignore_index=True), options)


def read_survey(source: str | Path, options: ReadOptions | None = None) -> pd.DataFrame:
    """Read and validate one survey file (long or wide layout); `-` reads standard input."""
    return read_surveys([source], options)


def _raw_table(source: str | Path, options: ReadOptions) -> pd.DataFrame:
    """One file's cells as text, in long layout, with the file and line of every row."""
    name = "<stdin>" if str(source) == "-" else str(source)
    text = _decode(name, _read_bytes(source, name))
    header, rows, lines = _split_rows(name, text)
    columns = _normalise_header(name, header)
    table = pd.DataFrame(rows, columns=columns, dtype="object").assign(_line=lines, _file=name)
    if year_columns(columns):
        _refuse_yearlike_columns(name, header, columns)
        if "year" in columns:
            raise InputError(
                [
                    Problem(
                        name,
                        "a wide file has one column per year, so it cannot also have a 'year' "
                        "column; remove one of the two layouts",
                        1,
                        "year",
                    )
                ]
            )
        table = _melt_wide(table, columns)
    _require_columns(name, table, options)
    return table


def _refuse_yearlike_columns(name: str, header: list[str], columns: list[str]) -> None:
    """In a wide file, a column that looks like a year but is not one would silently be
    ignored, losing that year's areas."""
    problems = [
        Problem(name, problem, 1, original.strip())
        for original, column in zip(header, columns, strict=True)
        if (problem := wide_column_problem(column))
    ]
    if problems:
        raise InputError(problems)


def _require_columns(name: str, table: pd.DataFrame, options: ReadOptions) -> None:
    found = ", ".join(c for c in table.columns if not c.startswith("_")) or "none"
    required = {
        "market": "add a `market` column with each market's name",
        "stall_area_m2": "add a `stall_area_m2` column (long layout) or one column per year "
        "named by its four digits (wide layout)",
        "year": "add a `year` column or give the year with --year YYYY",
    }
    if options.year is not None:
        del required["year"]
    problems = [
        Problem(name, f"required column is missing (found: {found}); {how}", 1, column)
        for column, how in required.items()
        if column not in table.columns
    ]
    if problems:
        raise InputError(problems)


def empty_observations() -> pd.DataFrame:
    return typed_observations(
        pd.DataFrame({c: pd.Series(dtype="object") for c in OBSERVATION_COLUMNS})
    )


def _read_bytes(source: str | Path, name: str) -> bytes:
    if str(source) == "-":
        return sys.stdin.buffer.read()
    path = Path(source)
    how = "check the path, or list the files with `ls`"
    if not path.exists():
        raise InputError([Problem(name, f"no such file; {how}")])
    if path.is_dir():
        raise InputError(
            [Problem(name, "this is a directory, not a CSV file; name the files in it")]
        )
    if path.stat().st_size > MAX_FILE_BYTES:
        size = path.stat().st_size / 1024**3
        raise InputError(
            [Problem(name, f"file is {size:.1f} GB; split it into yearly files under 2 GB")]
        )
    try:
        return path.read_bytes()
    except PermissionError:
        raise InputError(
            [Problem(name, "permission denied; make the file readable (`chmod +r`)")]
        ) from None
    except OSError as error:
        raise InputError([Problem(name, f"cannot be read ({error.strerror})")]) from None


def _decode(name: str, data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(
            [Problem(name, "file is UTF-16; save it as UTF-8 (`iconv -f UTF-16 -t UTF-8`)")]
        )
    if b"\x00" in data[:8192]:
        raise InputError([Problem(name, "this is a binary file, not a CSV text file")])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        guess = _guess_encoding(data)
        raise InputError(
            [
                Problem(
                    name,
                    f"byte 0x{data[error.start]:02x} is not UTF-8; the file looks like {guess}: "
                    f"convert it with `iconv -f {guess} -t UTF-8 '{name}' > utf8.csv`",
                    line=line,
                )
            ]
        ) from None
    if not text.strip():
        raise InputError([Problem(name, "file is empty; a survey file needs a header row")])
    return text


def _guess_encoding(data: bytes) -> str:
    """Korean files in EUC-KR/CP949 come in pairs of high bytes; Western ones mostly alone."""
    high = np.frombuffer(data, dtype=np.uint8) >= 0x80
    paired = high[:-1] & high[1:]
    return "CP949" if paired.sum() * 2 >= high.sum() * 0.8 else "CP1252"


def _split_rows(name: str, text: str) -> tuple[list[str], list[list[str]], list[int]]:
    """Parse CSV text into a header and rows, keeping the line on which each row starts."""
    delimiter = sniff_delimiter(text.split("\n", 1)[0])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[list[str]] = []
    lines: list[int] = []
    problems: list[Problem] = []
    header: list[str] | None = None
    start = 1
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                if header is None:
                    header = row
                else:
                    rows.append(row)
                    lines.append(start)
            start = reader.line_num + 1
    except csv.Error as error:
        raise InputError(
            [
                Problem(
                    name,
                    f"the CSV is malformed ({error}); look for an unmatched double quote",
                    line=start,
                )
            ]
        ) from None
    if header is None:
        raise InputError([Problem(name, "file has no header row, only empty cells", line=1)])
    width = len(header)
    if width > MAX_COLUMNS:
        raise InputError(
            [
                Problem(
                    name,
                    f"the header has {width:,} columns (at most {MAX_COLUMNS:,} are read); "
                    "a survey file has one column per field or per year",
                    line=1,
                )
            ]
        )
    fitted = []
    for row, line in zip(rows, lines, strict=True):
        if len(row) > width and not any(cell.strip() for cell in row[width:]):
            row = row[:width]
        if len(row) < width:
            row = row + [""] * (width - len(row))
        if len(row) > width:
            problems.append(
                Problem(
                    name,
                    f"row has {len(row)} fields but the header has {width}; "
                    "quote values that contain the delimiter",
                    line=line,
                )
            )
        fitted.append(row)
    if problems:
        raise InputError(problems)
    if not fitted:
        raise InputError([Problem(name, "file has a header but no data rows", line=1)])
    return header, fitted, lines


def _normalise_header(name: str, header: list[str]) -> list[str]:
    columns = [re.sub(r"\s+", "_", h.strip().lower()) for h in header]
    columns = [HEADER_SYNONYMS.get(c, c) for c in columns]
    seen: dict[str, int] = {}
    problems = []
    for position, column in enumerate(columns):
        if column and column in seen:
            problems.append(
                Problem(
                    name,
                    f"column appears twice (columns {seen[column] + 1} and {position + 1}); "
                    "keep one",
                    line=1,
                    column=header[position].strip(),
                )
            )
        seen.setdefault(column, position)
    if problems:
        raise InputError(problems)
    return [c if c else f"_unnamed_{i}" for i, c in enumerate(columns)]


def _melt_wide(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Turn one column per year into one row per market and year."""
    years = year_columns(columns)
    keep = [c for c in table.columns if c not in years]
    long = table.melt(id_vars=keep, value_vars=years, var_name="year", value_name="stall_area_m2")
    return long.assign(_area_column=long["year"])


def _validate(table: pd.DataFrame, options: ReadOptions) -> pd.DataFrame:
    checker = CellChecker(table)
    area_column = table["_area_column"] if "_area_column" in table.columns else None
    observations = pd.DataFrame(
        {
            "survey": checker.text("survey").fillna(options.survey or DEFAULT_SURVEY),
            "market_id": checker.text("market_id"),
            "market": checker.required_text(
                "market", "every row needs the market's name; fill it in or delete the row"
            ),
            "town": checker.text("town"),
            "province": checker.text("province"),
            **checker.coordinates(),
            "year": checker.year(options.year),
            "stall_area_m2": checker.area("stall_area_m2", area_column),
            "open_area_m2": checker.area("open_area_m2"),
            "imagery_date": checker.imagery_date(),
            "source": checker.text("source"),
            "status": checker.status(),
            "notes": checker.text("notes"),
            "file": table["_file"],
            "line": table["_line"].astype("int64"),
        }
    )
    observations = checker.apply_status(observations)
    observations = checker.drop_duplicates(observations)
    checker.raise_if_any()
    return typed_observations(observations)


def typed_observations(frame: pd.DataFrame) -> pd.DataFrame:
    """The observation columns in order, with their dtypes."""
    return frame.astype(
        {
            "survey": "string",
            "market_id": "string",
            "market": "string",
            "town": "string",
            "province": "string",
            "lat": "float64",
            "lon": "float64",
            "year": "int64",
            "stall_area_m2": "float64",
            "open_area_m2": "float64",
            "imagery_date": "string",
            "source": "string",
            "status": "string",
            "notes": "string",
            "file": "string",
            "line": "int64",
        }
    )[OBSERVATION_COLUMNS]


def normalise_name(names: pd.Series) -> pd.Series:
    """Names compared case- and space-insensitively."""
    return names.fillna("").str.casefold().str.replace(r"\s+", "", regex=True)


class CellChecker:
    """Validates the text cells of one or more files, collecting every problem found."""

    PER_FILE_LIMIT = 50

    def __init__(self, table: pd.DataFrame):
        self.table = table
        self.problems: list[Problem] = []

    def raise_if_any(self) -> None:
        if not self.problems:
            return
        by_file: dict[str, list[Problem]] = {}
        for problem in sorted(self.problems, key=lambda p: (p.file, p.line or 0)):
            by_file.setdefault(problem.file, []).append(problem)
        shown = []
        for file, found in by_file.items():
            shown += found[: self.PER_FILE_LIMIT]
            if len(found) > self.PER_FILE_LIMIT:
                hidden = len(found) - self.PER_FILE_LIMIT
                shown.append(Problem(file, f"… and {hidden} more problems in this file"))
        raise InputError(shown)

    def flag(self, mask: pd.Series, column: str, message: str, values: pd.Series) -> None:
        bad = mask.fillna(False).to_numpy(dtype=bool)
        if not bad.any():
            return
        rows = self.table.loc[bad, ["_file", "_line"]].assign(
            _value=values.to_numpy()[bad], _column=column
        )
        if column == "stall_area_m2" and "_area_column" in self.table.columns:
            rows["_column"] = self.table.loc[bad, "_area_column"].fillna(column)
        rows = rows.groupby("_file", sort=False).head(self.PER_FILE_LIMIT + 1)
        for file, line, value, col in rows[["_file", "_line", "_value", "_column"]].itertuples(
            index=False
        ):
            text = message.replace("{value}", str(value))
            self.problems.append(Problem(str(file), text, int(line), str(col), str(value)))

    def raw(self, column: str) -> pd.Series:
        if column not in self.table.columns:
            return pd.Series([""] * len(self.table), index=self.table.index, dtype="object")
        return self.table[column].fillna("").astype(str).str.strip()

    def text(self, column: str) -> pd.Series:
        raw = self.raw(column)
        return raw.where(raw != "", None)

    def required_text(self, column: str, how: str) -> pd.Series:
        values = self.text(column)
        self.flag(values.isna(), column, f"the value is blank; {how}", self.raw(column))
        return values

    def number(self, column: str, raw: pd.Series, pattern: re.Pattern[str], what: str) -> pd.Series:
        shaped = raw.str.match(pattern) | (raw == "")
        literal = raw.str.lower().str.lstrip("+-").isin(["nan", "inf", "infinity"])
        self.flag(
            literal,
            column,
            f"'{{value}}' is not a measured {what}; leave the cell blank if nothing was measured",
            raw,
        )
        self.flag(
            ~shaped & ~literal,
            column,
            f"not a number; write the {what} as digits, e.g. 1200 or 1,200",
            raw,
        )
        cleaned = raw.str.replace(",", "", regex=False)
        return pd.to_numeric(cleaned.where(shaped & (raw != "")), errors="coerce")

    def area(self, column: str, area_column: pd.Series | None = None) -> pd.Series:
        raw = self.raw(column)
        negative = raw.str.match(r"^-\s*\d")
        self.flag(
            negative,
            column,
            "area cannot be negative; a market with no stalls has area 0",
            raw,
        )
        values = self.number(column, raw.where(~negative, ""), _NUMBER, "area in m²")
        self.flag(
            values > MAX_AREA_M2,
            column,
            f"area is larger than {MAX_AREA_M2:,.0f} m², which no market has; "
            "check the units (m², not cm²) and for a missing decimal point",
            raw,
        )
        return values.where(values <= MAX_AREA_M2)

    def year(self, default: int | None) -> pd.Series:
        raw = self.raw("year")
        if default is not None:
            raw = raw.where(raw != "", str(default))
        this_year = date.today().year
        parsed = pd.to_numeric(raw.where(raw.str.fullmatch(r"\d{4}")), errors="coerce")
        self.flag(
            raw == "",
            "year",
            "the year is blank; fill it in or give it with --year YYYY",
            raw,
        )
        self.flag(
            (raw != "") & (parsed.isna() | (parsed < FIRST_YEAR) | (parsed > this_year)),
            "year",
            f"not a possible survey year; write four digits between {FIRST_YEAR} and {this_year}",
            raw,
        )
        return parsed.fillna(0).astype("int64")

    def coordinates(self) -> dict[str, pd.Series]:
        lat = self.signed("lat")
        lon = self.signed("lon")
        if "coordinates" in self.table.columns:
            raw = self.raw("coordinates")
            parts = raw.str.extract(_COORDINATES)
            self.flag(
                (raw != "") & parts["lat"].isna(),
                "coordinates",
                "cannot read coordinates; write 'LAT, LON' in decimal degrees, "
                "e.g. 39.4301, 127.2502",
                raw,
            )
            sign_lat = np.where(parts["ns"].str.upper() == "S", -1.0, 1.0)
            sign_lon = np.where(parts["ew"].str.upper() == "W", -1.0, 1.0)
            lat = lat.fillna(pd.to_numeric(parts["lat"], errors="coerce") * sign_lat)
            lon = lon.fillna(pd.to_numeric(parts["lon"], errors="coerce") * sign_lon)
            shown = raw
        else:
            shown = self.raw("lat") + ", " + self.raw("lon")
        self.flag(
            lat.notna() & ((lat < -90) | (lat > 90)),
            "lat" if "lat" in self.table.columns else "coordinates",
            "latitude must be between -90 and 90; check that latitude and longitude "
            "are not swapped",
            shown,
        )
        self.flag(
            lon.notna() & ((lon < -180) | (lon > 180)),
            "lon" if "lon" in self.table.columns else "coordinates",
            "longitude must be between -180 and 180",
            shown,
        )
        self.flag(
            lat.isna() != lon.isna(),
            "lat" if lat.isna().all() else "lon",
            "give both latitude and longitude, or neither",
            shown,
        )
        inside = lat.between(-90, 90) & lon.between(-180, 180)
        return {"lat": lat.where(inside), "lon": lon.where(inside)}

    def signed(self, column: str) -> pd.Series:
        raw = self.raw(column)
        self.flag(
            (raw != "") & ~raw.str.match(_SIGNED),
            column,
            "not a coordinate; write decimal degrees, e.g. 39.4301",
            raw,
        )
        return pd.to_numeric(raw.where(raw.str.match(_SIGNED)), errors="coerce")

    def imagery_date(self) -> pd.Series:
        raw = self.raw("imagery_date")
        parsed = pd.to_datetime(raw.where(raw.str.match(_DATE)), errors="coerce", format="mixed")
        self.flag(
            (raw != "") & parsed.isna(),
            "imagery_date",
            "not a date; write YYYY-MM-DD (or YYYY-MM, or YYYY)",
            raw,
        )
        return raw.where((raw != "") & parsed.notna(), None)

    def status(self) -> pd.Series:
        raw = self.raw("status").str.lower()
        self.flag(
            ~raw.isin(["", "open", "closed"]),
            "status",
            "status must be 'open', 'closed' or blank",
            self.raw("status"),
        )
        return raw.where(raw.isin(["open", "closed"]), None)

    def apply_status(self, observations: pd.DataFrame) -> pd.DataFrame:
        """A closed market with a blank area was observed with no stalls: area 0."""
        closed = observations["status"].eq("closed").fillna(False)
        self.flag(
            closed & (observations["stall_area_m2"] > 0),
            "stall_area_m2",
            "status is 'closed' but the area is above 0; set the area to 0 (or blank), "
            "or the status to 'open'",
            self.raw("stall_area_m2"),
        )
        return observations.assign(
            stall_area_m2=observations["stall_area_m2"].mask(
                closed & observations["stall_area_m2"].isna(), 0.0
            )
        )

    def drop_duplicates(self, observations: pd.DataFrame) -> pd.DataFrame:
        """One market twice in one year of one file: the same figures are collapsed, different
        ones refused (across files, `sources.refuse_conflicts` does the same after matching)."""
        keys = ["file", "survey", "_key", "year"]
        frame = observations.assign(_key=_row_identity(observations))
        dup = frame.duplicated(keys, keep=False)
        if not dup.any():
            return observations
        dups = frame[dup]
        first = dups.groupby(keys, sort=False).transform("first")
        conflict = dups.index[
            ~(
                _same(dups["stall_area_m2"], first["stall_area_m2"])
                & _same(dups["open_area_m2"], first["open_area_m2"])
            )
        ]
        for index in conflict:
            row = frame.loc[index]
            other = int(first.loc[index, "line"])
            self.problems.append(
                Problem(
                    str(row["file"]),
                    f"'{row['market']}' ({row['year']}) is already on line {other} with a "
                    "different area; keep one row per market and year",
                    int(row["line"]),
                    "stall_area_m2",
                    _format_area(row["stall_area_m2"]),
                )
            )
        return observations[~frame.duplicated(keys, keep="first")]


def _row_identity(observations: pd.DataFrame) -> pd.Series:
    by_name = normalise_name(observations["market"]) + "|" + normalise_name(observations["town"])
    return ("id:" + observations["market_id"].fillna("")).where(
        observations["market_id"].notna(), "nt:" + by_name
    )


def _same(a: pd.Series, b: pd.Series) -> pd.Series:
    return (a == b) | (a.isna() & b.isna())


def _format_area(value: float) -> str:
    return "" if pd.isna(value) else f"{value:g}"
