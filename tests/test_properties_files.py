"""File order never changes a figure (through the CLI, on real files)."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from marketdelta.cli import app

areas = st.one_of(st.none(), st.integers(0, 40).map(lambda a: a * 25))


@settings(max_examples=8, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(areas, min_size=3, max_size=3), min_size=1, max_size=6), st.randoms())
def test_file_order_does_not_matter(tmp_path_factory, grid, random):
    folder = tmp_path_factory.mktemp("files")
    paths = []
    for year_index, year in enumerate((2020, 2021, 2022)):
        lines = ["market,town,year,stall_area_m2"]
        lines += [
            f"Market #{m},Town {m % 2},{year},{'' if row[year_index] is None else row[year_index]}"
            for m, row in enumerate(grid)
        ]
        path = folder / f"{year}.csv"
        path.write_text("\n".join(lines) + "\n")
        paths.append(str(path))
    shuffled = paths[:]
    random.shuffle(shuffled)
    runner = CliRunner()
    first = runner.invoke(app, ["report", *paths, "--format", "json"])
    second = runner.invoke(app, ["report", *shuffled, "--format", "json"])
    assert first.exit_code == second.exit_code
    if first.exit_code == 0:
        assert json.loads(first.stdout) == json.loads(second.stdout)
