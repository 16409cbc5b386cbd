"""Export for Google Earth (KML), QGIS (GeoJSON) and spreadsheets (CSV)."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET

from conftest import write

KML = "{http://www.opengis.net/kml/2.2}"


def test_kml_has_222_placemarks_with_the_right_coordinates(run):
    result = run("export", "--format", "kml", "-q")
    assert result.exit_code == 0, result.output
    root = ET.fromstring(result.stdout.encode())
    placemarks = root.findall(f".//{KML}Placemark")
    assert len(placemarks) == 222
    by_name = {p.findtext(f"{KML}name"): p for p in placemarks}
    haksan = by_name["Haksan"]
    assert haksan.findtext(f"{KML}Point/{KML}coordinates") == "126.021379,39.430997,0"
    assert haksan.findtext(f"{KML}styleUrl") == "#closed"
    data = {d.get("name"): d.findtext(f"{KML}value") for d in haksan.iter(f"{KML}Data")}
    assert data["change_m2"] == "-400"
    assert "Haksan" in haksan.findtext(f"{KML}description")


def test_geojson_matches_the_csv_export(run):
    geojson = json.loads(run("export", "--format", "geojson", "-q").stdout)
    rows = list(csv.DictReader(io.StringIO(run("export", "--format", "csv", "-q").stdout)))
    assert geojson["type"] == "FeatureCollection"
    assert len(geojson["features"]) == 222 == len(rows)
    by_key = {row["market_key"]: row for row in rows}
    for feature in geojson["features"]:
        properties = feature["properties"]
        row = by_key[properties["market_key"]]
        assert feature["geometry"]["coordinates"] == [properties["lon"], properties["lat"]]
        for key, value in properties.items():
            if value is None:
                assert row[key] == ""
            elif isinstance(value, (int, float)):
                assert float(row[key]) == value, key
            else:
                assert row[key] == value, key


def test_formula_injection_is_neutralised_and_xml_escaped(tmp_path, run):
    data = write(
        tmp_path / "evil.csv",
        "market,town,lat,lon,2020,2021\n"
        '"=HYPERLINK(""x"")",T,39.1,125.1,10,20\n'
        "<b>&amp;</b>,T,39.2,125.2,10,10\n",
    )
    exported = run("export", data, "--format", "csv", "-q").stdout
    assert "'=HYPERLINK" in exported
    assert "\n=HYPERLINK" not in exported and ",=HYPERLINK" not in exported
    report_csv = run("report", data, "--format", "csv", "-q").stdout
    assert "'=HYPERLINK" in report_csv
    kml = run("export", data, "--format", "kml", "-q").stdout
    root = ET.fromstring(kml.encode())
    names = {p.findtext(f"{KML}name") for p in root.iter(f"{KML}Placemark")}
    assert names == {'=HYPERLINK("x")', "<b>&amp;</b>"}
    assert "<b>&amp;</b>" not in kml  # escaped in the file, intact when parsed


def test_markets_without_coordinates_are_counted(tmp_path, run):
    data = write(tmp_path / "a.csv", "market,lat,lon,2020,2021\nA,39,125,1,2\nB,,,1,2\n")
    result = run("export", data, "--format", "geojson")
    assert len(json.loads(result.stdout)["features"]) == 1
    assert "1 market(s) without coordinates" in result.stderr


def test_export_to_a_file(tmp_path, run):
    out = tmp_path / "m.kml"
    result = run("export", "--out", out, "-q")
    assert result.stdout.strip() == str(out)
    assert out.read_text().startswith("<?xml")
