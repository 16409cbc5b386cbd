"""Generate marketdelta's bundled demo data: calibrated, illustrative yearly survey files.

    python data/generate.py          # rewrites data/stalls/*.csv and data/national/*.csv

Deterministic (fixed seed, no clock): running it twice gives byte-identical files.

Named markets carry the published figures of AccessDPRK's "Market Growth Post-COVID
2020-2025" (January 2026). Every other market is synthetic, named "Synthetic ...", and placed
near the centre of a real province only so that maps look plausible. The synthetic values are
chosen so that the totals match the published ones exactly; see data/README.md.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 20260115

# Province centres (approximate) and KINU's 2016 count of official markets per province.
PROVINCES = {
    "South Pyongan": ((39.35, 125.95), 65),
    "North Pyongan": ((40.05, 124.95), 51),
    "South Hamgyong": ((40.05, 127.45), 48),
    "North Hamgyong": ((41.75, 129.55), 46),
    "South Hwanghae": ((38.25, 125.45), 34),
    "North Hwanghae": ((38.55, 126.35), 34),
    "Kangwon": ((38.85, 127.55), 29),
    "Chagang": ((40.75, 126.55), 24),
    "Ryanggang": ((41.35, 128.15), 18),
    "Pyongyang": ((39.03, 125.75), 30),
    "Nampo": ((38.75, 125.40), 21),
    "Rason": ((42.30, 130.35), 4),
}

STALL_YEARS = range(2020, 2026)
NATIONAL_YEARS = range(2010, 2022)
# National series: annual gross new market area (all market space), m².
# 2019, 2020 and 2021 are published; 2011-2018 are synthetic, rising toward the 2019 peak.
NATIONAL_GROSS = {
    2011: 5_840, 2012: 7_310, 2013: 8_920, 2014: 10_650, 2015: 12_480,
    2016: 14_730, 2017: 17_160, 2018: 19_870, 2019: 23_260, 2020: 7_450, 2021: 630,
}  # fmt: skip
# Rare, small reductions before COVID ("market infrastructure rarely shrank"); more after.
NATIONAL_SHRINK = {2013: 120, 2016: 80, 2018: 150, 2020: 310, 2021: 460}


@dataclass
class Market:
    name: str
    town: str
    province: str
    lat: float
    lon: float
    areas: dict[int, float | None] = field(default_factory=dict)  # year -> area (None: closed)
    sources: dict[int, str] = field(default_factory=dict)
    notes: dict[int, str] = field(default_factory=dict)
    spelling: dict[int, str] = field(default_factory=dict)


@dataclass
class Town:
    name: str
    province: str
    years: list[int]
    markets: list[Market] = field(default_factory=list)


def round_to(value: float, step: int) -> int:
    return int(step * round(value / step))


def split_total(rng: np.random.Generator, total: int, parts: int, step: int, cap: int) -> list[int]:
    """Split `total` into `parts` positive multiples of `step`, each below `cap`."""
    while True:
        weights = rng.gamma(2.0, 1.0, parts)
        values = [max(step, round_to(w / weights.sum() * total, step)) for w in weights]
        values[int(np.argmax(values))] += total - sum(values)
        if all(step <= v < cap for v in values):
            return values


# --------------------------------------------------------------------------- stall survey


def named_stall_towns() -> list[Town]:
    """The markets the article names, with its coordinates and figures."""
    sariwon = Town("Sariwon", "North Hwanghae", [2020, 2021, 2023, 2025])
    sariwon.markets = [
        Market(
            "Sariwon Market #2", "Sariwon", "North Hwanghae", 38.510007, 125.766451,
            {2020: 2350, 2021: 2780, 2023: 3420, 2025: 3830},
        ),
        Market(
            "Sariwon Market #4", "Sariwon", "North Hwanghae", 38.508158, 125.742289,
            {2020: 0, 2021: 1620, 2023: 1620, 2025: 1620},
            notes={2020: "walled site cleared; stalls built mid-2020"},
        ),
    ]  # fmt: skip
    pyongyang = Town("Pyongyang", "Pyongyang", [2020, 2022, 2024, 2025])
    pyongyang.markets = [
        Market(
            f"Pyongyang-Hadang Market #{n}",
            "Pyongyang",
            "Pyongyang",
            39.054520,
            125.721985,
            areas,
            notes={2020: "shares one published coordinate with Hadang Market #2/#3"},
        )
        for n, areas in (
            (2, {2020: 1900, 2022: 2310, 2024: 2990, 2025: 2990}),
            (3, {2020: 1400, 2022: 1400, 2024: 2080, 2025: 2350}),
        )
    ]
    haksan = Town("Haksan", "South Pyongan", [2020, 2024])
    haksan.markets = [
        Market(
            "Haksan", "Haksan", "South Pyongan", 39.430997, 126.021379, {2020: 400, 2024: 0},
            notes={2024: "market fully demolished"},
        )
    ]  # fmt: skip
    nampo = Town("Nampo", "Nampo", [2020, 2022, 2024])
    nampo.markets = [
        Market(
            "Nampo-Waudo", "Nampo", "Nampo", 38.723984, 125.348461,
            {2020: 600, 2022: 650, 2024: 0},
            notes={2024: "vendor buildings removed; walled space remains"},
            spelling={2024: "Nampo-Wadu"},
        )
    ]  # fmt: skip
    tokryong = Town("Tokryong", "North Pyongan", [2020, 2022, 2024])
    tokryong.markets = [
        Market(
            "Tokryong Market #2", "Tokryong", "North Pyongan", 40.219230, 124.694337,
            {2020: 350, 2022: 0, 2024: None},
            sources={2022: "Planet"},
            notes={
                2022: "closed 2021; checked on Planet imagery",
                2024: "no recent Google Earth imagery; closure carried forward",
            },
        )
    ]  # fmt: skip
    yomjon = Town("Yomjon", "South Hwanghae", [2020, 2021, 2022, 2025])
    yomjon.markets = [
        Market(
            "Yomjon", "Yomjon", "South Hwanghae", 37.766101, 126.127783,
            {2020: 1150, 2021: 1310, 2022: 1270, 2025: 0},
            notes={2021: "stall area fluctuated before closing"},
        )
    ]  # fmt: skip
    return [sariwon, pyongyang, haksan, nampo, tokryong, yomjon]


def synthetic_stall_towns(rng: np.random.Generator) -> list[Town]:
    """132 synthetic towns holding 214 synthetic markets (82 towns with two, 50 with one)."""
    provinces = _spread_provinces(rng, 132)
    ends = [2025] * 66 + [2024] * 66
    rng.shuffle(ends)
    towns = []
    market_number = 0
    for t in range(132):
        province = provinces[t]
        (clat, clon), _ = PROVINCES[province]
        lat, lon = clat + rng.uniform(-0.35, 0.35), clon + rng.uniform(-0.45, 0.45)
        middle = [y for y in range(2021, ends[t]) if rng.random() < 0.35]
        town = Town(f"Synthetic Town {t + 1:03d}", province, [2020, *middle, ends[t]])
        for _ in range(2 if t < 82 else 1):
            market_number += 1
            town.markets.append(
                Market(
                    f"Synthetic Market #{market_number:03d}",
                    town.name,
                    province,
                    round(lat + rng.uniform(-0.01, 0.01), 6),
                    round(lon + rng.uniform(-0.01, 0.01), 6),
                )
            )
        towns.append(town)
    return towns


def _spread_provinces(rng: np.random.Generator, n: int) -> list[str]:
    """Every province at least once, the rest in proportion to KINU's counts."""
    names = list(PROVINCES)
    weights = np.array([PROVINCES[p][1] for p in names], dtype=float)
    rest = rng.choice(names, size=n - len(names), p=weights / weights.sum())
    chosen = names + list(rest)
    rng.shuffle(chosen)
    return chosen


def fill_synthetic_stalls(rng: np.random.Generator, towns: list[Town]) -> None:
    """22 markets grow, 11 shrink, 181 end where they started (a few wobble on the way)."""
    markets = [(town, m) for town in towns for m in town.markets]
    order = rng.permutation(len(markets))
    growing, shrinking, steady = order[:22], order[22:33], order[33:]
    gains = split_total(rng, 8_400, 22, 5, 950)
    losses = split_total(rng, 1_135, 11, 5, 400)
    for index, gain in zip(growing, gains, strict=True):
        town, market = markets[index]
        _path(rng, town, market, _baseline(rng), gain)
    for index, loss in zip(shrinking, losses, strict=True):
        town, market = markets[index]
        _path(rng, town, market, _baseline(rng) + 400, -loss)
    for n, index in enumerate(steady):
        town, market = markets[index]
        market.areas = dict.fromkeys(town.years, float(_baseline(rng)))
        if n < 15 and len(town.years) > 2:
            wobble_year = town.years[1]
            market.areas[wobble_year] += rng.choice([-10, -5, 5, 10, 15])
            market.notes[wobble_year] = "re-measured; difference is measurement noise"
    # A late entrant: first seen as an empty walled site in 2022, stalls by the end.
    n, index = next((n, i) for n, i in enumerate(growing) if markets[i][0].years[-1] == 2025)
    town, market = markets[index]
    market.areas = {2022: 0.0, **{y: float(gains[n]) for y in town.years if y > 2022}}
    market.notes = {2022: "new walled site, no stalls yet"}
    town.years = sorted(set(town.years) | {2022})


def _baseline(rng: np.random.Generator) -> int:
    return round_to(float(np.clip(rng.lognormal(6.6, 0.6), 120, 6000)), 10)


def _path(rng: np.random.Generator, town: Town, market: Market, start: int, change: int) -> None:
    """A monotone path from `start` in the first year to `start + change` in the last."""
    years = town.years
    steps = np.sort(rng.uniform(0, 1, len(years) - 2))
    middle = [start + round_to(change * s, 5) for s in steps]
    market.areas = dict(zip(years, [start, *middle, start + change], strict=True))


# ------------------------------------------------------------------------- national survey


def national_markets(rng: np.random.Generator) -> list[Market]:
    """404 synthetic markets: 330 open in 2010, the rest opening 2011-2021 (recorded as 0
    before they open, so that opening counts as new area)."""
    provinces = _spread_provinces(rng, 404)
    markets = []
    for n, province in enumerate(provinces, 1):
        (clat, clon), _ = PROVINCES[province]
        markets.append(
            Market(
                f"Synthetic National Market #{n:03d}",
                f"Synthetic County {n:03d}",
                province,
                round(clat + rng.uniform(-0.4, 0.4), 6),
                round(clon + rng.uniform(-0.5, 0.5), 6),
            )
        )
    area = {
        m.name: (round_to(rng.lognormal(8.3, 0.5), 10) if i < 330 else 0)
        for i, m in enumerate(markets)
    }
    unopened = [m.name for m in markets[330:]]
    for m in markets:
        m.areas[2010] = area[m.name]
    for year in NATIONAL_YEARS[1:]:
        open_now = [m.name for m in markets if area[m.name] > 0]
        openings = unopened[: 7 if year <= 2019 else 3] if year < 2021 else []
        unopened = unopened[len(openings) :]
        gross, shrink = NATIONAL_GROSS[year], NATIONAL_SHRINK.get(year, 0)
        growers = list(rng.choice(open_now, size=10 if year < 2021 else 2, replace=False))
        takers = openings + growers
        gains = split_total(rng, gross, len(takers), 10, 10**6)
        for name, gain in zip(takers, gains, strict=True):
            area[name] += gain
        if shrink:
            candidates = [n for n in open_now if n not in takers and area[n] > shrink + 500]
            area[str(rng.choice(candidates))] -= shrink
        for m in markets:
            m.areas[year] = area[m.name]
    return markets


# ---------------------------------------------------------------------------------- writing


def write_stalls(towns: list[Town], rng: np.random.Generator) -> None:
    folder = HERE / "stalls"
    folder.mkdir(exist_ok=True)
    header = [
        "market", "town", "province", "coordinates", "year", "imagery_date", "source",
        "stall_area_m2", "status", "notes",
    ]  # fmt: skip
    for year in STALL_YEARS:
        rows = []
        for town in towns:
            if year not in town.years:
                continue
            date = f"{year}-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}"
            for m in town.markets:
                if year not in m.areas:
                    continue
                area = m.areas[year]
                closed = area is None or (area == 0 and m.areas.get(min(m.areas), 0) > 0)
                rows.append(
                    [
                        m.spelling.get(year, m.name),
                        town.name,
                        town.province,
                        f"{m.lat:.6f}, {m.lon:.6f}",
                        year,
                        "" if area is None else date,
                        "" if area is None else m.sources.get(year, "Google Earth"),
                        "" if area is None else _thousands(area),
                        "closed" if closed else "open",
                        m.notes.get(year, ""),
                    ]
                )
        _write(folder / f"stalls-{year}.csv", header, rows)


def write_national(markets: list[Market], rng: np.random.Generator) -> None:
    folder = HERE / "national"
    folder.mkdir(exist_ok=True)
    header = [
        "market", "town", "province", "lat", "lon", "year", "source",
        "stall_area_m2", "open_area_m2",
    ]  # fmt: skip
    stall_share = {m.name: rng.uniform(0.45, 0.7) for m in markets}
    for year in NATIONAL_YEARS:
        rows = []
        for m in markets:
            total = m.areas[year]
            stall = round_to(total * stall_share[m.name], 10)
            rows.append(
                [
                    m.name,
                    m.town,
                    m.province,
                    m.lat,
                    m.lon,
                    year,
                    "Google Earth",
                    stall,
                    total - stall,
                ]
            )
        _write(folder / f"national-{year}.csv", header, rows)


def _thousands(area: float) -> str:
    return f"{area:,.0f}" if area == int(area) else f"{area:,.1f}"


def _write(path: Path, header: list[str], rows: list[list]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def write_datapackage() -> None:
    """data/datapackage.json: the demo files as a Frictionless Data Package."""
    resources = [
        {
            "name": path.stem,
            "path": f"{folder}/{path.name}",
            "profile": "tabular-data-resource",
            "format": "csv",
            "encoding": "utf-8",
            "schema": f"schemas/{folder}.schema.json",
        }
        for folder in ("stalls", "national")
        for path in sorted((HERE / folder).glob("*.csv"))
    ]
    package = {
        "name": "marketdelta-demo",
        "title": "marketdelta demo surveys (calibrated illustrative data)",
        "description": "See data/README.md: named markets carry published figures; "
        "all other markets are synthetic.",
        "licenses": [{"name": "CC0-1.0"}],
        "resources": resources,
    }
    (HERE / "datapackage.json").write_text(json.dumps(package, indent=2) + "\n", encoding="utf-8")


def main() -> None:
    rng = np.random.default_rng(SEED)
    synthetic = synthetic_stall_towns(rng)
    fill_synthetic_stalls(rng, synthetic)
    towns = named_stall_towns() + synthetic
    write_stalls(towns, rng)
    write_national(national_markets(rng), rng)
    write_datapackage()


if __name__ == "__main__":
    main()
