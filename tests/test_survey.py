"""Reading survey files: layouts, encodings, and clear errors."""

from __future__ import annotations

import pytest
from conftest import write

from marketdelta.errors import InputError
from marketdelta.survey import ReadOptions, read_survey


def problems(path, **options) -> list[str]:
    with pytest.raises(InputError) as caught:
        read_survey(path, ReadOptions(**options))
    return [str(p) for p in caught.value.problems]


def test_blank_is_not_observed_and_zero_is_no_stalls(tmp_path):
    frame = read_survey(write(tmp_path / "a.csv", "market,year,stall_area_m2\nA,2020,\nB,2020,0\n"))
    assert frame["stall_area_m2"].isna().tolist() == [True, False]
    assert frame["stall_area_m2"].tolist()[1] == 0


def test_closed_with_blank_area_counts_as_zero(tmp_path):
    frame = read_survey(
        write(tmp_path / "a.csv", "market,year,stall_area_m2,status\nA,2020,,Closed\n")
    )
    assert frame["stall_area_m2"].tolist() == [0.0]


def test_coordinates_column_forms(tmp_path):
    frame = read_survey(
        write(
            tmp_path / "a.csv",
            'market,year,stall_area_m2,coordinates\nA,2020,1,"39.4301° 127.2502°"\n'
            'B,2020,1,"39.4301, 127.2502"\nC,2020,1,39.4301°N 127.2502°E\n',
        )
    )
    assert frame["lat"].tolist() == [39.4301] * 3
    assert frame["lon"].tolist() == [127.2502] * 3


def test_semicolon_delimited_file_is_read(tmp_path):
    frame = read_survey(write(tmp_path / "a.csv", "market;year;stall_area_m2\nA;2020;5\n"))
    assert frame["stall_area_m2"].tolist() == [5.0]


def test_unknown_columns_are_ignored(tmp_path):
    frame = read_survey(
        write(tmp_path / "a.csv", "market,year,stall_area_m2,colour,2019x\nA,2020,5,red,?\n")
    )
    assert len(frame) == 1


def test_wide_layout(tmp_path):
    frame = read_survey(write(tmp_path / "w.csv", 'market,2020,2021\nA,"1,000",\n'))
    assert frame[["year", "stall_area_m2"]].dropna().values.tolist() == [[2020, 1000.0]]


def test_wide_bad_cell_names_its_year_column(tmp_path):
    path = write(tmp_path / "w.csv", "market,2020,2021\nA,10,x\n")
    assert problems(path) == [f"{path}:2: column '2021': value 'x' — " + _NOT_A_NUMBER]


_NOT_A_NUMBER = "not a number; write the area in m² as digits, e.g. 1200 or 1,200"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "file is empty"),
        ("market,year,stall_area_m2\n", "header but no data rows"),
        ("market,year\nA,2020\n", "column 'stall_area_m2'"),
        ("year,stall_area_m2\n2020,1\n", "column 'market'"),
        ("market,year,stall_area_m2\nA,2020,-1\n", "cannot be negative"),
        ("market,year,stall_area_m2\nA,2020,inf\n", "'inf' is not a measured area"),
        ("market,year,stall_area_m2\nA,2020,5000000\n", "larger than 1,000,000"),
        ("market,year,stall_area_m2\nA,20x0,1\n", "not a possible survey year"),
        ("market,year,stall_area_m2,lat,lon\nA,2020,1,139,125\n", "latitude must be"),
        ("market,year,stall_area_m2,lat\nA,2020,1,39\n", "both latitude and longitude"),
        ("market,year,stall_area_m2,status\nA,2020,5,closed\n", "status is 'closed'"),
        ("market,year,stall_area_m2\nA,2020,5\nA,2020,6\n", "already on line 2"),
        ('market,year,stall_area_m2\nA,2020,"5\n', "malformed"),
        ("market,year,stall_area_m2\nA,2020,5,9\n", "row has 4 fields"),
        (",year,stall_area_m2\n,2020,5\n", "column 'market'"),
    ],
)
def test_bad_input(tmp_path, text, fragment):
    path = write(tmp_path / "bad.csv", text)
    found = problems(path)
    assert any(fragment in p for p in found), found
    assert all(p.startswith(str(path)) for p in found)


def test_non_utf8_says_what_it_looks_like(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("market,year,stall_area_m2\nCafé,2020,1\n".encode("cp1252"))
    (message,) = problems(path)
    assert ":2 — " in message and "CP1252" in message and "iconv" in message


def test_binary_and_missing_and_directory(tmp_path):
    binary = tmp_path / "x.csv"
    binary.write_bytes(b"\x89PNG\x00\x00\x01")
    assert "binary" in problems(binary)[0]
    assert "no such file" in problems(tmp_path / "nope.csv")[0]
    assert "directory" in problems(tmp_path)[0]
