"""Random bytes and random CSV-like text never make the reader raise anything but InputError."""

from __future__ import annotations

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketdelta.errors import InputError
from marketdelta.survey import OBSERVATION_COLUMNS, ReadOptions, read_survey

HEADERS = ["market", "town", "year", "stall_area_m2", "open_area_m2", "lat", "lon",
           "coordinates", "status", "imagery_date", "2020", "2021", "market_id", "x"]  # fmt: skip
CELLS = st.one_of(
    st.sampled_from(
        [
            "",
            "0",
            "12",
            "1,200",
            "-5",
            "nan",
            "2020",
            "closed",
            "open",
            "39.1",
            "39.1, 125.2",
            '"',
            "a,b",
            "1e309",
            "2021-02-30",
            " ",
            "é",
            "#2",
        ]
    ),
    st.text(max_size=8),
)
settings_ = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


def read(path) -> pd.DataFrame | None:
    try:
        frame = read_survey(path, ReadOptions(year=2020))
    except InputError as error:
        assert error.problems and all(str(p) for p in error.problems)
        return None
    assert list(frame.columns) == OBSERVATION_COLUMNS
    return frame


@settings_
@given(st.binary(max_size=400))
def test_random_bytes(tmp_path, data):
    path = tmp_path / "random.csv"
    path.write_bytes(data)
    read(path)


@settings_
@given(
    st.lists(st.sampled_from(HEADERS), min_size=1, max_size=6),
    st.lists(st.lists(CELLS, max_size=7), max_size=6),
    st.sampled_from([",", ";", "\t"]),
)
def test_random_csv_like_text(tmp_path, header, rows, delimiter):
    lines = [delimiter.join(header)] + [delimiter.join(row) for row in rows]
    path = tmp_path / "random.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    frame = read(path)
    if frame is not None:
        observed = frame["stall_area_m2"].dropna()
        assert ((observed >= 0) & (observed <= 1_000_000)).all()
