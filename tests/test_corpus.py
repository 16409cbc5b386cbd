"""The bad-input corpus (tests/corpus/): every kind of bad file, through every command.

Each file must give exit status 1, exactly the expected message (naming the file, and the line,
column and value where one is at fault), no traceback, and leave a workspace byte-identical.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

CORPUS = Path(__file__).parent / "corpus"
AREA = "column 'stall_area_m2'"
NOT_A_NUMBER = "not a number; write the area in m² as digits, e.g. 1200 or 1,200"
NEGATIVE = "area cannot be negative; a market with no stalls has area 0"
BAD_YEAR = "not a possible survey year; write four digits between 1960 and {this_year}"

EXPECTED = {
    "empty.csv": ["{f} — file is empty; a survey file needs a header row"],
    "header_only.csv": ["{f}:1 — file has a header but no data rows"],
    "missing_area_column.csv": [
        "{f}:1: column 'stall_area_m2' — required column is missing (found: market, town, "
        "year); add a `stall_area_m2` column (long layout) or one column per year named by its "
        "four digits (wide layout)"
    ],
    "non_numeric.csv": [f"{{f}}:2: {AREA}: value '12a' — {NOT_A_NUMBER}"],
    "negative.csv": [f"{{f}}:2: {AREA}: value '-40' — {NEGATIVE}"],
    "nan.csv": [
        f"{{f}}:2: {AREA}: value 'NaN' — 'NaN' is not a measured area in m²; leave the cell "
        "blank if nothing was measured"
    ],
    "infinite.csv": [
        f"{{f}}:2: {AREA}: value 'inf' — 'inf' is not a measured area in m²; leave the cell "
        "blank if nothing was measured"
    ],
    "absurd.csv": [
        f"{{f}}:2: {AREA}: value '45000000' — area is larger than 1,000,000 m², which no market "
        "has; check the units (m², not cm²) and for a missing decimal point"
    ],
    "impossible_year.csv": ["{f}:2: column 'year': value '2202' — " + BAD_YEAR],
    "blank_year.csv": [
        "{f}:2: column 'year': value '' — the year is blank; fill it in or give it with --year YYYY"
    ],
    "latitude_out_of_range.csv": [
        "{f}:2: column 'lat': value '93.5, 125.1' — latitude must be between -90 and 90; check "
        "that latitude and longitude are not swapped"
    ],
    "lat_without_lon.csv": [
        "{f}:2: column 'lon': value '39.1, ' — give both latitude and longitude, or neither"
    ],
    "unparsable_coordinates.csv": [
        "{f}:2: column 'coordinates': value 'north of the river' — cannot read coordinates; "
        "write 'LAT, LON' in decimal degrees, e.g. 39.4301, 127.2502"
    ],
    "conflicting_duplicate.csv": [
        f"{{f}}:4: {AREA}: value '120' — 'a' (2020) is already on line 2 with a different "
        "area; keep one row per market and year"
    ],
    "latin1.csv": [
        "{f}:2 — byte 0xe9 is not UTF-8; the file looks like CP1252: convert it with "
        "`iconv -f CP1252 -t UTF-8 '{f}' > utf8.csv`"
    ],
    "korean_cp949.csv": [
        "{f}:2 — byte 0xbd is not UTF-8; the file looks like CP949: convert it with "
        "`iconv -f CP949 -t UTF-8 '{f}' > utf8.csv`"
    ],
    "utf16.csv": ["{f} — file is UTF-16; save it as UTF-8 (`iconv -f UTF-16 -t UTF-8`)"],
    "binary.csv": ["{f} — this is a binary file, not a CSV text file"],
    "ragged.csv": [
        "{f}:2 — row has 6 fields but the header has 4; quote values that contain the delimiter"
    ],
    "unterminated_quote.csv": [
        "{f}:2 — the CSV is malformed (unexpected end of data); look for an unmatched double quote"
    ],
    "wide_bad_cell.csv": [f"{{f}}:2: column '2021': value '1oo' — {NOT_A_NUMBER}"],
    "wide_yearlike_column.csv": [
        "{f}:1: column '2022a' — column looks like a year but is not four digits, so its areas "
        "would be ignored; rename it to the year (e.g. 2022) or to a word"
    ],
    "blank_market.csv": [
        "{f}:2: column 'market': value '' — the value is blank; every row needs the market's "
        "name; fill it in or delete the row"
    ],
    "bad_status.csv": [
        "{f}:2: column 'status': value 'demolished' — status must be 'open', 'closed' or blank"
    ],
    "closed_with_area.csv": [
        f"{{f}}:2: {AREA}: value '100' — status is 'closed' but the area is above 0; set the "
        "area to 0 (or blank), or the status to 'open'"
    ],
    "bad_imagery_date.csv": [
        "{f}:2: column 'imagery_date': value '2020-13-45' — not a date; write YYYY-MM-DD (or "
        "YYYY-MM, or YYYY)"
    ],
    "duplicate_header.csv": [
        "{f}:1: column 'Market' — column appears twice (columns 1 and 5); keep one"
    ],
    "several_bad_rows.csv": [
        "{f}:3: column 'year': value '20x0' — " + BAD_YEAR,
        f"{{f}}:4: {AREA}: value '-3' — {NEGATIVE}",
        f"{{f}}:5: {AREA}: value 'four' — {NOT_A_NUMBER}",
    ],
}


def test_the_corpus_is_complete():
    assert sorted(EXPECTED) == sorted(p.name for p in CORPUS.glob("*.csv"))
    assert len(EXPECTED) >= 25


def expected_lines(name: str, path: Path) -> list[str]:
    from datetime import date

    return ["Error: " + line.format(f=path, this_year=date.today().year) for line in EXPECTED[name]]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    from typer.testing import CliRunner

    from marketdelta.cli import app

    db = tmp_path_factory.mktemp("ws") / "ws.duckdb"
    good = CORPUS.parent / "fixtures" / "long-2020.csv"
    assert CliRunner().invoke(app, ["import", str(good), "--db", str(db)]).exit_code == 0
    return db


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_file_through_every_command(name, run, workspace, tmp_path):
    path = tmp_path / name
    shutil.copyfile(CORPUS / name, path)
    before = digest(workspace)
    for command in (["validate"], ["report"], ["import", "--db", str(workspace)]):
        result = run(*command, path)
        assert result.exit_code == 1, (command, result.output)
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
        assert errors == expected_lines(name, path), command
        assert "Traceback" not in result.output
    assert digest(workspace) == before


def test_missing_file_and_directory(run, tmp_path):
    for command in ("validate", "report", "import"):
        missing = run(command, tmp_path / "nope.csv")
        assert missing.exit_code == 1
        assert f"{tmp_path / 'nope.csv'} — no such file" in missing.stderr
        folder = run(command, tmp_path)
        assert folder.exit_code == 1
        assert f"{tmp_path} — this is a directory, not a CSV file" in folder.stderr


def test_unreadable_file(run, tmp_path, monkeypatch):
    path = tmp_path / "locked.csv"
    path.write_text("market,year,stall_area_m2\nA,2020,1\n")

    def denied(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", denied)
    result = run("validate", path)
    assert result.exit_code == 1
    assert "permission denied; make the file readable (`chmod +r`)" in result.stderr


def test_delimiters_are_detected(run, tmp_path):
    semicolon = tmp_path / "semi.csv"
    semicolon.write_text("market;town;year;stall_area_m2\nA;T;2020;1\nA;T;2021;3\n")
    tab = tmp_path / "tab.csv"
    tab.write_text("market\ttown\tyear\tstall_area_m2\nA\tT\t2020\t1\nA\tT\t2021\t3\n")
    for path in (semicolon, tab):
        result = run("report", path, "--format", "json")
        assert result.exit_code == 0, result.output
        assert '"net_m2": 2' in result.stdout


def test_a_million_columns_fail_clearly(run, tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"c{i}" for i in range(1_000_000)) + "\n1\n")
    result = run("validate", path)
    assert result.exit_code == 1
    assert "the header has 1,000,000 columns (at most 10,000 are read)" in result.stderr


def test_a_huge_field_fails_clearly(run, tmp_path):
    path = tmp_path / "field.csv"
    path.write_text("market,year,stall_area_m2\n" + "A" * 200_000 + ",2020,1\n")
    result = run("validate", path)
    assert result.exit_code == 1
    assert "malformed" in result.stderr and "Traceback" not in result.output


@pytest.mark.skipif(
    not __import__("os").environ.get("MARKETDELTA_SLOW_TESTS"),
    reason="optional: set MARKETDELTA_SLOW_TESTS=1 (generates a 200 MB file)",
)
def test_a_200_megabyte_file_works(tmp_path, run):
    import subprocess
    import sys

    path = tmp_path / "big.csv"
    generator = Path(__file__).parents[1] / "bench" / "gen_panel.py"
    subprocess.run(
        [sys.executable, str(generator), "--markets", "400000", "--out", str(path)], check=True
    )
    assert path.stat().st_size > 190 * 1024**2
    result = run("report", path, "--format", "json", "-q")
    assert result.exit_code == 0, result.output
    assert '"markets": 400000' in result.stdout
