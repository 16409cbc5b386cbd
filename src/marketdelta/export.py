"""Every market as a point with its period figures: KML (Google Earth), GeoJSON (QGIS), CSV.

KML is built with the standard library's ElementTree, which escapes every name and value, so a
market called `<b>` or `=HYPERLINK(...)` stays text. Markets without coordinates are left out of
KML and GeoJSON (and counted, so the CLI can say so); CSV has every market.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from typing import Any

import pandas as pd

from .render import to_csv
from .report import Report

KML_NS = "http://www.opengis.net/kml/2.2"
# KML colours are aabbggrr; Okabe-Ito, as in the charts.
KML_STYLES = {
    "increased": ("ffb27200", 0.9),
    "opened": ("ff739e00", 1.0),
    "decreased": ("ff009fe6", 0.9),
    "closed": ("ff005ed5", 1.4),
    "unchanged": ("ff8c8c8c", 0.6),
}
ICON = "http://maps.google.com/mapfiles/kml/shapes/placemark_circle.png"


def market_records(report: Report) -> list[dict[str, Any]]:
    """One plain dict per market, with JSON-friendly values (the CSV export's columns)."""
    frame = report.to_frame()
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def _plain(value: Any) -> Any:
    """Missing values as None, numpy scalars as Python ones, whole floats as integers."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    value = value.item() if hasattr(value, "item") else value
    return int(value) if isinstance(value, float) and value.is_integer() else value


def placed(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["lat"] is not None and r["lon"] is not None]


def to_geojson(report: Report) -> str:
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [r["lon"], r["lat"]]},
            "properties": r,
        }
        for r in placed(market_records(report))
    ]
    collection = {
        "type": "FeatureCollection",
        "name": f"marketdelta {report.survey.name} {report.start}-{report.end}",
        "features": features,
    }
    return json.dumps(collection, ensure_ascii=False, indent=1) + "\n"


def to_kml(report: Report) -> str:
    ET.register_namespace("", KML_NS)
    root = ET.Element(f"{{{KML_NS}}}kml")
    document = _sub(root, "Document")
    _sub(document, "name", f"Markets: {report.survey.name}, {report.start}-{report.end}")
    _sub(document, "description", f"Change in {report.measure_label}. Made with marketdelta.")
    for name, (colour, scale) in KML_STYLES.items():
        style = _sub(document, "Style", id=name)
        icon_style = _sub(style, "IconStyle")
        _sub(icon_style, "color", colour)
        _sub(icon_style, "scale", str(scale))
        _sub(_sub(icon_style, "Icon"), "href", ICON)
        if name == "closed":
            label = _sub(style, "LabelStyle")
            _sub(label, "color", colour)
    folders = {name: _sub(document, "Folder") for name in KML_STYLES}
    for name, folder in folders.items():
        _sub(folder, "name", name)
    for record in placed(market_records(report)):
        placemark = _sub(folders[record["class"]], "Placemark")
        _sub(placemark, "name", record["market"])
        _sub(placemark, "description", _balloon(record, report))
        _sub(placemark, "styleUrl", f"#{record['class']}")
        data = _sub(placemark, "ExtendedData")
        for key, value in record.items():
            if value is not None and key not in ("lat", "lon"):
                field = _sub(data, "Data", name=key)
                _sub(field, "value", str(value))
        point = _sub(placemark, "Point")
        _sub(point, "coordinates", f"{record['lon']},{record['lat']},0")
    ET.indent(root, space=" ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _balloon(record: dict[str, Any], report: Report) -> str:
    town = f", {record['town']}" if record["town"] else ""
    before = f"{record['baseline_m2']:,} m² ({record['baseline_year']})"
    after = f"{record['end_m2']:,} m² ({record['end_year']})"
    return (
        f"{record['market']}{town}: {record['class']}. {report.measure_label.capitalize()} "
        f"{before} → {after}, change {record['change_m2']:+,} m²."
    )


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{KML_NS}}}{tag}", attributes)
    if text is not None:
        element.text = text
    return element


EXPORTERS = {"kml": to_kml, "geojson": to_geojson, "csv": to_csv}
