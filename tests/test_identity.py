"""Market identity across files, as the contract defines it."""

from __future__ import annotations

import pandas as pd

from marketdelta.identity import edit_distance, near_identical, resolve_markets
from marketdelta.survey import empty_observations


def observations(*rows: dict) -> pd.DataFrame:
    base = {"survey": "s", "stall_area_m2": 1.0, "file": "f.csv"}
    frame = pd.DataFrame([{**base, "line": i + 2, **row} for i, row in enumerate(rows)])
    return pd.concat([empty_observations(), frame], ignore_index=True)


def keys(frame: pd.DataFrame) -> list[str]:
    return resolve_markets(frame).observations["market_key"].tolist()


def test_same_id_is_the_same_market_whatever_the_name():
    k = keys(
        observations(
            {"market_id": "M1", "market": "Old name", "year": 2020},
            {"market_id": "M1", "market": "New name", "year": 2021},
        )
    )
    assert k[0] == k[1]


def test_name_and_town_case_and_space_insensitive():
    k = keys(
        observations(
            {"market": "Sariwon Market #2", "town": "Sariwon", "year": 2020},
            {"market": "sariwon  market#2 ", "town": "SARIWON", "year": 2021},
        )
    )
    assert k[0] == k[1]


def test_row_without_id_joins_the_id_of_its_name():
    k = keys(
        observations(
            {"market_id": "M1", "market": "Alpha", "town": "T", "year": 2020},
            {"market": "Alpha", "town": "T", "year": 2021},
        )
    )
    assert k[0] == k[1]


def test_near_identical_spelling_in_the_same_town_is_merged_with_a_notice():
    identity = resolve_markets(
        observations(
            {"market": "Nampo-Waudo", "town": "Nampo", "year": 2020},
            {"market": "Nampo-Wadu", "town": "Nampo", "year": 2024},
        )
    )
    assert identity.observations["market_key"].nunique() == 1
    assert len(identity.merges) == 1
    assert "Nampo-Wadu" in str(identity.merges[0]) and "Nampo-Waudo" in str(identity.merges[0])


def test_near_identical_spelling_within_250_m_is_merged():
    k = keys(
        observations(
            {"market": "Nampo-Waudo", "lat": 38.723984, "lon": 125.348461, "year": 2020},
            {"market": "Nampo-Wadu", "lat": 38.7255, "lon": 125.3490, "year": 2024},
        )
    )
    assert k[0] == k[1]


def test_far_apart_and_different_towns_are_not_merged():
    k = keys(
        observations(
            {"market": "Nampo-Waudo", "town": "A", "lat": 38.72, "lon": 125.34, "year": 2020},
            {"market": "Nampo-Wadu", "town": "B", "lat": 38.80, "lon": 125.34, "year": 2024},
        )
    )
    assert k[0] != k[1]


def test_names_differing_in_a_number_are_never_merged_even_at_one_point():
    point = {"lat": 39.054520, "lon": 125.721985, "town": "Pyongyang"}
    k = keys(
        observations(
            {"market": "Pyongyang-Hadang Market #2", "year": 2020, **point},
            {"market": "Pyongyang-Hadang Market #3", "year": 2021, **point},
        )
    )
    assert k[0] != k[1]


def test_two_markets_in_the_same_year_are_never_merged():
    k = keys(
        observations(
            {"market": "Chongro", "town": "T", "year": 2020},
            {"market": "Chongra", "town": "T", "year": 2020},
        )
    )
    assert k[0] != k[1]


def test_strict_lists_but_does_not_merge():
    identity = resolve_markets(
        observations(
            {"market": "Nampo-Waudo", "town": "Nampo", "year": 2020},
            {"market": "Nampo-Wadu", "town": "Nampo", "year": 2024},
        ),
        fuzzy=False,
    )
    assert identity.observations["market_key"].nunique() == 2
    assert not identity.merges[0].applied


def test_known_labels_are_kept():
    frame = observations({"market": "Nampo-Wadu", "town": "Nampo", "year": 2025})
    identity = resolve_markets(frame, known={"nt:nampo-wadu|nampo": "nt:nampo-waudo|nampo"})
    assert identity.observations["market_key"].tolist() == ["nt:nampo-waudo|nampo"]


def test_edit_distance():
    assert edit_distance("waudo", "wadu") == 2
    assert edit_distance("abcd", "abdc") == 1
    assert near_identical("nampo-waudo", "nampo-wadu")
    assert not near_identical("hadang", "sadong")
