"""Matching markets across files: one market, one key, however its name was spelled.

The rules, in order (see docs/definitions.md):

1. the same `market_id` is the same market;
2. else the same name and town (case- and space-insensitive);
3. else, in the same town or within 250 m, near-identical spellings (`Nampo-Waudo` /
   `Nampo-Wadu`) are merged, and each merge is reported as a notice. Names that differ in a
   number (`#2` / `#3`) are never merged, nor are two markets observed in the same year of the
   same survey (the file itself says they are two), nor two markets with different ids.

A market's key is the label of its first exact group (`id:…` or `nt:name|town`). The workspace
stores every label it has seen with its key, so a spelling merged once is recognised later.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .survey import normalise_name

NEAR_METRES = 250.0
CELL_DEGREES = 0.005  # larger than 250 m in latitude and (below 60°N) in longitude


@dataclass(frozen=True)
class Merge:
    """Two spellings taken to be one market."""

    kept: str
    merged: str
    town: str | None
    reason: str
    merged_files: tuple[str, ...]
    applied: bool = True

    def __str__(self) -> str:
        where = f" ({self.town})" if self.town else ""
        files = ", ".join(self.merged_files)
        verb = "taken to be" if self.applied else "looks like"
        return f"'{self.merged}' in {files} is {verb} '{self.kept}'{where}: {self.reason}"


@dataclass
class Identity:
    """The observations with a `market_key` column, and the fuzzy merges made."""

    observations: pd.DataFrame
    merges: list[Merge] = field(default_factory=list)


def exact_labels(observations: pd.DataFrame) -> pd.Series:
    """Rules 1 and 2: `id:<market_id>`, or `nt:<name>|<town>` for rows without an id.

    A row without an id joins the id of the other rows with the same name and town, when
    exactly one id is known for that name and town.
    """
    by_name = normalise_name(observations["market"]) + "|" + normalise_name(observations["town"])
    has_id = observations["market_id"].notna()
    ids = "id:" + observations["market_id"].astype("string")
    pairs = pd.DataFrame({"nt": by_name[has_id], "id": ids[has_id]}).drop_duplicates()
    ids_per_name = pairs.groupby("nt")["id"].transform("size")
    single = pairs[ids_per_name == 1].set_index("nt")["id"]
    return ids.where(has_id, by_name.map(single)).fillna("nt:" + by_name).astype("string")


def resolve_markets(
    observations: pd.DataFrame,
    known: dict[str, str] | None = None,
    fuzzy: bool = True,
) -> Identity:
    """Give every observation a `market_key`.

    `known` maps labels already decided (by the workspace) to their keys; those decisions are
    kept, and two known markets are never merged with each other. With `fuzzy=False`, the
    near-identical spellings are listed in `merges` (with `applied=False`) but not merged.
    """
    known = known or {}
    labels = exact_labels(observations)
    keys = labels.map(lambda label: known.get(label, label)).astype("string")
    keyed = observations.assign(market_key=keys)
    candidates = _fuzzy_candidates(_describe_groups(keyed))
    merges, renames = fuzzy_merges(with_history(candidates, keyed), set(known.values()), fuzzy)
    if renames:
        keys = keys.replace(renames)
    return Identity(observations.assign(market_key=keys), merges)


def _describe_groups(observations: pd.DataFrame) -> pd.DataFrame:
    """One row per key: its first spelling, town and coordinates, and its name and town keys.

    The (survey, year) sets and files of a group are only needed for fuzzy candidates, so they
    are added later, for those groups alone (`with_history`).
    """
    ordered = observations.sort_values(["year", "file", "line"], kind="stable")
    first = ordered.groupby("market_key", sort=True).agg(
        market=("market", "first"),
        town=("town", "first"),
        lat=("lat", "first"),
        lon=("lon", "first"),
        market_id=("market_id", "first"),
        first_year=("year", "min"),
    )
    name_key = normalise_name(first["market"]).str.replace(r"[^\w#]", "", regex=True)
    return first.assign(
        name_key=name_key,
        numbers=name_key.str.findall(r"\d+").map(tuple),
        town_key=normalise_name(first["town"]),
    )


def with_history(groups: pd.DataFrame, observations: pd.DataFrame) -> pd.DataFrame:
    """Add to each group the (survey, year) pairs it was seen in and the files it came from."""
    rows = observations[observations["market_key"].isin(groups.index)].sort_values(
        ["year", "file", "line"], kind="stable"
    )
    seen = (
        rows.assign(sy=rows["survey"].astype(str) + ":" + rows["year"].astype(str))
        .groupby("market_key", sort=True)["sy"]
        .agg(frozenset)
    )
    files = rows.groupby("market_key", sort=True)["file"].agg(lambda f: tuple(dict.fromkeys(f)))
    return groups.assign(seen=seen, files=files)


def _fuzzy_candidates(groups: pd.DataFrame) -> pd.DataFrame:
    """Groups that share a town, or a map cell with a neighbour, with another group whose name
    has the same numbers: the only ones rule 3 could merge."""
    has_town = groups["town_key"] != ""
    by_town = groups[has_town].groupby(["town_key", "numbers"])["market"].transform("size")
    keys = set(by_town.index[by_town > 1])
    placed = groups[groups["lat"].notna() & groups["lon"].notna()]
    fine_y = np.floor(placed["lat"] / CELL_DEGREES).astype("int64")
    fine_x = np.floor(placed["lon"] / CELL_DEGREES).astype("int64")
    # Points within 250 m are at most one fine cell apart in each direction, so they share a
    # cell of at least one of four 2x2-cell grids (offset by 0 or 1 cell in y and in x).
    for dy in (0, 1):
        for dx in (0, 1):
            cells = pd.DataFrame(
                {"numbers": placed["numbers"], "y": (fine_y + dy) // 2, "x": (fine_x + dx) // 2}
            )
            size = cells.groupby(["numbers", "y", "x"])["y"].transform("size")
            keys |= set(size.index[size > 1])
    return groups.loc[sorted(keys)]


def fuzzy_merges(
    groups: pd.DataFrame, pinned: set[str], apply: bool
) -> tuple[list[Merge], dict[str, str]]:
    """Rule 3: near-identical spellings in the same town or within 250 m."""
    merges: list[Merge] = []
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        while key in parent:
            key = parent[key]
        return key

    records = groups.reset_index().sort_values(["first_year", "market_key"], kind="stable")
    rows = list(records.itertuples(index=False))
    seen = {row.market_key: row.seen for row in rows}
    for a, b, reason in _candidate_pairs(rows):
        ra, rb = root(a.market_key), root(b.market_key)
        if ra == rb or (ra in pinned and rb in pinned) or seen[ra] & seen[rb]:
            continue
        if not _may_merge(a, b):
            continue
        kept, merged = sorted((a, b), key=lambda r: (r.first_year, r.market_key))
        merges.append(
            Merge(kept.market, merged.market, kept.town, reason, merged.files, applied=apply)
        )
        if apply:
            keep, drop = (ra, rb) if kept.market_key == a.market_key else (rb, ra)
            if drop in pinned:
                keep, drop = drop, keep
            parent[drop] = keep
            seen[keep] = seen[keep] | seen[drop]
    return merges, {key: root(key) for key in parent}


def _candidate_pairs(rows: list) -> list[tuple]:
    """Pairs of groups in the same town, or close enough on the map, with a reason each.

    Blocked so that large surveys stay fast: names whose numbers differ never merge, and two
    groups seen in the same (survey, year) never merge, so neither kind of pair is generated.
    """
    pairs: dict[tuple[int, int], str] = {}
    by_town: dict[tuple, list[int]] = defaultdict(list)
    by_cell: dict[tuple, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        numbers = row.numbers
        if row.town_key:
            by_town[(row.town_key, numbers)].append(i)
        if not (pd.isna(row.lat) or pd.isna(row.lon)):
            by_cell[(numbers, *_cell(row.lat, row.lon))].append(i)
    for members in by_town.values():
        for i, j in _unseen_together(rows, members, members):
            pairs[(i, j)] = "near-identical spelling in the same town"
    for (numbers, cy, cx), members in by_cell.items():
        around = [
            k
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            for k in by_cell.get((numbers, cy + dy, cx + dx), [])
        ]
        for i, j in _unseen_together(rows, members, around):
            if (i, j) not in pairs:
                metres = _distance_m(rows[i], rows[j])
                if metres <= NEAR_METRES:
                    pairs[(i, j)] = f"near-identical spelling {metres:.0f} m apart"
    return [(rows[i], rows[j], reason) for (i, j), reason in sorted(pairs.items())]


def _unseen_together(rows: list, left: list[int], right: list[int]):
    """Index pairs (i < j) from two lists whose groups share no (survey, year)."""
    buckets: dict[frozenset, list[int]] = defaultdict(list)
    for j in right:
        buckets[rows[j].seen].append(j)
    for i in left:
        for seen, members in buckets.items():
            if rows[i].seen & seen:
                continue
            yield from ((i, j) for j in members if i < j)


def _may_merge(a, b) -> bool:
    if pd.notna(a.market_id) and pd.notna(b.market_id) and a.market_id != b.market_id:
        return False
    if a.numbers != b.numbers:
        return False
    return near_identical(a.name_key, b.name_key)


def near_identical(a: str, b: str) -> bool:
    """At most one edit in five characters (at least one), and not trivially short."""
    if a == b:
        return True
    longest = max(len(a), len(b))
    allowed = max(1, longest // 5)
    if min(len(a), len(b)) < 4 or abs(len(a) - len(b)) > allowed:
        return False
    return edit_distance(a, b) <= allowed


def edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance (Levenshtein plus adjacent transpositions)."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


def _cell(lat: float, lon: float) -> tuple[int, int]:
    return math.floor(lat / CELL_DEGREES), math.floor(lon / CELL_DEGREES)


def _distance_m(a, b) -> float:
    return float(haversine_m(a.lat, a.lon, b.lat, b.lon))


def haversine_m(lat1, lon1, lat2, lon2):
    """Great-circle distance in metres (works on scalars and arrays)."""
    lat1, lon1, lat2, lon2 = map(np.radians, (lat1, lon1, lat2, lon2))
    h = (
        np.sin((lat2 - lat1) / 2) ** 2
        + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6_371_000.0 * np.arcsin(np.sqrt(h))


def describe_markets(observations: pd.DataFrame) -> pd.DataFrame:
    """One row per market: the spelling, town, province and coordinates first recorded for it."""
    ordered = observations.sort_values(["year", "file", "line"], kind="stable")
    return ordered.groupby("market_key", sort=True).agg(
        market_id=("market_id", "first"),
        market=("market", "first"),
        town=("town", "first"),
        province=("province", "first"),
        lat=("lat", "first"),
        lon=("lon", "first"),
    )
