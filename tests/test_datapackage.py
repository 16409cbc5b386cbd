"""The published survey format (data/datapackage.json) and `validate` agree."""

from __future__ import annotations

import pytest
from conftest import write

from marketdelta.sources import demo_dir

frictionless = pytest.importorskip("frictionless")


def test_demo_files_satisfy_the_schema():
    report = frictionless.validate(str(demo_dir() / "datapackage.json"))
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])[:5]


@pytest.mark.parametrize(
    ("cell", "fragment"),
    [("-120", "cannot be negative"), ("lots", "not a number"), ("2000000", "larger than")],
)
def test_schema_and_validate_reject_the_same_bad_cell(tmp_path, run, cell, fragment):
    header = "market,town,province,coordinates,year,imagery_date,source,stall_area_m2,status,notes"
    bad = write(
        tmp_path / "bad.csv",
        f'{header}\nA,T,P,"39.1, 125.1",2024,2024-05-01,Google Earth,{cell},open,\n',
    )
    resource = frictionless.Resource(
        path=str(bad), schema=str(demo_dir() / "schemas" / "stalls.schema.json")
    )
    assert not resource.validate().valid
    result = run("validate", bad)
    assert result.exit_code == 1
    assert fragment in result.stderr
