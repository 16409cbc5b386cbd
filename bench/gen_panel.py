"""Generate a large, realistic survey panel as a long (or wide) CSV, deterministically.

    python bench/gen_panel.py --markets 1000000 --years 15 --out big.csv [--wide]

Each market starts with an area rounded to 10 m²; every year about 10% grow, 3% shrink and
0.5% close for good; about 5% open later (observed as 0 first); about 8% of the cells are not
observed (blank). Market i is "Market #i" in "Town i // 5" (five markets a town).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd


def panel(markets: int, years: int, first_year: int = 2011, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    area = np.round(rng.lognormal(6.8, 0.7, markets) / 10) * 10
    opens = np.where(rng.random(markets) < 0.05, rng.integers(1, years, markets), 0)
    closed = np.zeros(markets, dtype=bool)
    columns = []
    for y in range(years):
        u = rng.random(markets)
        grow = u < 0.10
        shrink = (u >= 0.10) & (u < 0.13)
        close = (u >= 0.13) & (u < 0.135)
        step = np.round(rng.gamma(2.0, 60.0, markets) / 10) * 10
        area = np.where(grow, area + step, np.where(shrink, np.maximum(area - step, 10), area))
        closed |= close & (y > 0)
        value = np.where(closed | (y < opens), 0.0, area)
        value = np.where(rng.random(markets) < 0.08, np.nan, value)
        columns.append(value)
    values = np.stack(columns, axis=1)
    return pd.DataFrame(values, columns=[str(first_year + y) for y in range(years)]).assign(
        market=[f"Market #{i}" for i in range(markets)],
        town=[f"Town {i // 5}" for i in range(markets)],
    )


def write(frame: pd.DataFrame, out: Path, wide: bool) -> None:
    year_columns = [c for c in frame.columns if c.isdigit()]
    if wide:
        frame[["market", "town", *year_columns]].to_csv(out, index=False, float_format="%.0f")
        return
    with out.open("w") as handle:
        handle.write("market,town,year,stall_area_m2\n")
        for column in year_columns:  # one year at a time keeps memory flat
            part = frame[["market", "town"]].assign(year=column, stall_area_m2=frame[column])
            part.to_csv(handle, header=False, index=False, float_format="%.0f")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", type=int, default=100_000)
    parser.add_argument("--years", type=int, default=15)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--wide", action="store_true")
    args = parser.parse_args()
    write(panel(args.markets, args.years), args.out, args.wide)


if __name__ == "__main__":
    main()
