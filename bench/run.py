"""marketdelta benchmarks: every target of issue #6 as a ratio against a baseline run here.

    python bench/run.py                      # all targets, panels of 10^4, 10^5 and 10^6 markets
    python bench/run.py --max-markets 100000 # quicker: skip the 10^6 panel

Each command runs in a fresh process; the time is the median of several runs (wall clock) and
the memory is the child's peak RSS (from wait4). Baselines run in the same script, on the same
files, taking turns with the commands they are compared with, so the ratios hold on any machine
and a machine whose speed drifts slows both sides alike. Exits non-zero only on errors, never
on timings.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent
MARKETDELTA = str(BIN / "marketdelta") if (BIN / "marketdelta").exists() else "marketdelta"

DUCKDB_REPORT = """
import json, sys, duckdb
path, start, end = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
con = duckdb.connect()
con.execute(f'''
CREATE TEMP TABLE obs AS
SELECT market, town, year, stall_area_m2 AS area
FROM read_csv('{path}', header=true, columns={{'market':'VARCHAR','town':'VARCHAR',
     'year':'INTEGER','stall_area_m2':'DOUBLE'}})
WHERE stall_area_m2 IS NOT NULL AND year <= {end}''')
annual = con.execute(f'''
WITH f AS (SELECT year, area - lag(area) OVER (PARTITION BY market, town ORDER BY year) AS d
           FROM obs)
SELECT year, sum(greatest(d, 0)), sum(greatest(-d, 0)), sum(d), count(*)
FROM f WHERE d IS NOT NULL AND year > {start} GROUP BY year ORDER BY year''').fetchall()
period = con.execute(f'''
WITH m AS (
  SELECT coalesce(arg_max(area, year) FILTER (WHERE year <= {start}),
                  arg_min(area, year) FILTER (WHERE year > {start})) AS b,
         arg_max(area, year) AS e
  FROM obs GROUP BY market, town)
SELECT count(*), sum(b), sum(e), sum(greatest(e - b, 0)), sum(greatest(b - e, 0)),
       count(*) FILTER (WHERE e > b), count(*) FILTER (WHERE e < b),
       count(*) FILTER (WHERE b = 0 AND e > 0), count(*) FILTER (WHERE b > 0 AND e = 0)
FROM m''').fetchone()
print(json.dumps({"annual": annual, "period": period}, default=float))
"""

DUCKDB_LOAD = """
import sys, duckdb
con = duckdb.connect(sys.argv[2])
con.execute(f"CREATE TABLE obs AS SELECT * FROM read_csv('{sys.argv[1]}', header=true)")
con.close()
"""


@dataclass
class Run:
    seconds: float  # the median
    peak_mb: float  # the largest
    times: list[float]  # every run, in the order they took turns
    cpu: float = 0.0  # the median CPU time (user + system), all cores


def paired_difference(a: Run, b: Run) -> float:
    """The median of the differences between runs of `a` and `b` that took turns: a drift of
    the machine's speed over the runs falls on both sides of each difference, which the
    difference of the two medians does not ensure."""
    return statistics.median(x - y for x, y in zip(a.times, b.times, strict=True))


@dataclass(frozen=True)
class Command:
    argv: list[str]
    cwd: Path | None = None
    env: dict[str, str] | None = None
    fresh: Path | None = None  # a file the command creates, removed (untimed) before each run


def run_once(command: Command) -> tuple[float, float, float]:
    """Wall time, peak RSS (MB) and CPU time (user + system, s) of one run of a command."""
    if command.fresh is not None:
        command.fresh.unlink(missing_ok=True)
    start = time.perf_counter()
    process = subprocess.Popen(
        command.argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        cwd=command.cwd, env=command.env,
    )  # fmt: skip
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        error = process.stderr.read().decode() if process.stderr else ""
        raise SystemExit(f"failed: {' '.join(command.argv)}\n{error}")
    return seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def run(*commands: Command, repeat: int = 3) -> list[Run]:
    """Median wall time, largest peak RSS and median CPU time of `repeat` runs of each
    command. The commands take turns (a, b, a, b, ...), so that a machine whose speed drifts
    over minutes slows a command and its baseline alike."""
    times: list[list[float]] = [[] for _ in commands]
    peaks: list[list[float]] = [[] for _ in commands]
    cpus: list[list[float]] = [[] for _ in commands]
    for _ in range(repeat):
        for command, seconds, peak, cpu in zip(commands, times, peaks, cpus, strict=True):
            wall, rss, used = run_once(command)
            seconds.append(wall)
            peak.append(rss)
            cpu.append(used)
    return [
        Run(statistics.median(t), max(p), t, statistics.median(c))
        for t, p, c in zip(times, peaks, cpus, strict=True)
    ]


@dataclass
class Target:
    name: str
    ours: Run
    base: Run
    limit: float | None  # None: no target of its own
    memory_limit: float | None = None
    verdict: bool = True  # False: shown for information (the target is defined elsewhere)
    cpu: bool = False  # also show both sides' CPU time: the work behind the ratio

    @property
    def ratio(self) -> float:
        return self.ours.seconds / self.base.seconds

    def line(self) -> str:
        ok = (self.limit is None or self.ratio <= self.limit) and (
            self.memory_limit is None or self.ours.peak_mb <= self.memory_limit * self.base.peak_mb
        )
        memory = (
            f"  RSS {self.ours.peak_mb:,.0f}/{self.base.peak_mb:,.0f} MB "
            f"(x{self.ours.peak_mb / self.base.peak_mb:.2f}, limit x{self.memory_limit})"
            if self.memory_limit
            else ""
        )
        ours, base = self.ours.cpu, self.base.cpu
        cpu = f"  CPU {ours:.1f}/{base:.1f} s (x{ours / base:.2f})" if self.cpu else ""
        label = ("PASS" if ok else "MISS") if self.verdict else "info"
        limit = "no limit" if self.limit is None else f"limit x{self.limit}"
        return (
            f"{label}  {self.name:<58} {self.ours.seconds:8.3f}s "
            f"vs {self.base.seconds:8.3f}s  x{self.ratio:5.2f} ({limit}){memory}{cpu}"
        )


def startup_targets(work: Path) -> list[Target]:
    """Targets 1-3. The demo report and chart run as an analyst runs them again and again:
    the first run of each fills the cache (`src/marketdelta/cache.py`: the panel, and the
    chart's data) and is not timed; both are also shown with the cache off, for information."""
    env = {**os.environ, "MARKETDELTA_DB": "", "MARKETDELTA_CACHE": str(work / "cache")}
    uncached = {**env, "MARKETDELTA_CACHE": "off"}
    pandas = Command([PYTHON, "-c", "import pandas"])
    pyplot = Command([PYTHON, "-c", "import pandas, matplotlib.pyplot"])
    report = [MARKETDELTA, "report", "-q"]
    chart = [MARKETDELTA, "chart", "-q", "--out", str(work / "s.png")]
    run_once(Command(report, work, env))  # fills the cache
    run_once(Command(chart, work, env))
    base, helped, reported, cold = run(
        pandas,
        Command([MARKETDELTA, "--help"], work, env),
        Command(report, work, env),
        Command(report, work, uncached),
        repeat=7,
    )
    base_plot, charted, cold_chart = run(
        pyplot, Command(chart, work, env), Command(chart, work, uncached), repeat=5
    )
    return [
        Target("1. marketdelta --help  vs  import pandas", helped, base, 0.3),
        Target("2. report (bundled demo)  vs  import pandas", reported, base, 1.5),
        Target("   report (bundled demo, cache off)  vs  import pandas", cold, base, 1.5,
               verdict=False),
        Target("3. chart series (demo)  vs  import pandas, matplotlib.pyplot", charted, base_plot,
               1.3),
        Target("   chart series (demo, cache off)  vs  import pandas, matplotlib.pyplot",
               cold_chart, base_plot, 1.3, verdict=False),
    ]  # fmt: skip


def panel_file(work: Path, markets: int, wide: bool = False) -> Path:
    path = work / f"{'wide' if wide else 'panel'}-{markets}.csv"
    if not path.exists():
        subprocess.run(
            [PYTHON, str(HERE / "gen_panel.py"), "--markets", str(markets), "--out", str(path),
             *(["--wide"] if wide else [])],
            check=True,
        )  # fmt: skip
    return path


# Report runs per panel. Medians damp a noisy machine; the smaller panels take more runs,
# because target 6 divides their small difference from the start-up by few observations: at
# 10^4 markets that difference is about 0.09 s, and single pairs of runs spread by 0.07 s (one
# standard deviation, 25 pairs), so the median of 25 pairs is within ±18% (one standard error)
# and of 49 within ±13%.
REPORT_RUNS = {10_000: 49, 100_000: 9}  # else 3


def report_command(work: Path, path: Path, env: dict[str, str] | None = None) -> Command:
    """`marketdelta report` of one file, as JSON: what targets 4 and 6 time."""
    return Command([MARKETDELTA, "report", str(path), "--format", "json", "-q"], work, env)


def big_targets(work: Path, markets: int, verdict: bool) -> tuple[list[Target], int, Run]:
    """Targets 4 and 5 on a panel of `markets` markets, its number of observations, and the
    fixed cost of a fast-path report, measured taking turns with the report (for target 6)."""
    path = panel_file(work, markets)
    db = work / f"ws-{markets}.duckdb"
    duck_db = work / f"duck-{markets}.duckdb"
    imported, loaded = run(  # each run into a new workspace; the last is reported from
        Command([MARKETDELTA, "import", str(path), "--db", str(db), "-q"], work, fresh=db),
        Command([PYTHON, "-c", DUCKDB_LOAD, str(path), str(duck_db)], work, fresh=duck_db),
        repeat=3,
    )
    ours, duck, from_db, startup = run(
        report_command(work, path),
        Command([PYTHON, "-c", DUCKDB_REPORT, str(path), "2011", "2025"], work),
        Command([MARKETDELTA, "report", "--db", str(db), "--format", "json", "-q"], work),
        startup_command(work),
        repeat=REPORT_RUNS.get(markets, 3),
    )
    label = f"{markets:,} markets x 15 years"
    targets = [
        Target(f"4. report CSV ({label})  vs  DuckDB script", ours, duck, 1.25, 2.0, verdict,
               cpu=True),
        Target(f"5a. report from workspace  vs  report from CSV ({label})", from_db, ours, 0.6,
               verdict=verdict, cpu=True),
        Target(f"5b. import ({label})  vs  DuckDB read_csv into a table", imported, loaded, 2.0,
               verdict=verdict, cpu=True),
    ]  # fmt: skip
    observations = int(markets * 15 * 0.92)
    return targets, observations, startup


def startup_command(work: Path, env: dict[str, str] | None = None) -> Command:
    """The fixed cost of a fast-path report: the same command on a 300-market panel."""
    env = {**(env or os.environ), "MARKETDELTA_FAST_OBSERVATIONS": "0"}
    return report_command(work, panel_file(work, 300), env)


def one_core_per_million(work: Path, markets: int, observations: int) -> float:
    """Target 6's measure with DuckDB on one core (`MARKETDELTA_THREADS=1`), for information:
    if the smallest panel costs as much per row as the next on one core, its higher cost on two
    is the second core it cannot use (DuckDB reads a CSV under 8 MB on one thread, and 138,000
    rows are one full row group of 122,880 and a small one)."""
    env = {**os.environ, "MARKETDELTA_THREADS": "1"}
    report = report_command(work, panel_file(work, markets), env)
    ours, startup = run(report, startup_command(work, env), repeat=REPORT_RUNS.get(markets, 3))
    return paired_difference(ours, startup) / (observations / 1e6)


def wide_targets(work: Path, markets: int) -> list[Target]:
    """For information: the same panel in wide layout (one row per market, one column per
    year) against the long file, for a report and an import, taking turns."""
    wide, long = panel_file(work, markets, wide=True), panel_file(work, markets)
    db = work / f"ws-wide-{markets}.duckdb"
    imported_wide, imported_long, reported_wide, reported_long = run(
        Command([MARKETDELTA, "import", str(wide), "--db", str(db), "-q"], work, fresh=db),
        Command([MARKETDELTA, "import", str(long), "--db", str(db), "-q"], work, fresh=db),
        report_command(work, wide),
        report_command(work, long),
    )
    label = f"{markets:,} markets x 15 years"
    return [
        Target(f"   report, wide layout  vs  long ({label})", reported_wide, reported_long, None,
               verdict=False),
        Target(f"   import, wide layout  vs  long ({label})", imported_wide, imported_long, None,
               verdict=False),
    ]  # fmt: skip


def compile_package() -> None:
    """Byte-compile marketdelta as an install or a first run would: with PYTHONDONTWRITEBYTECODE
    set (as on some machines), every run would otherwise compile the changed modules again."""
    subprocess.run(
        [PYTHON, "-c", "import compileall, marketdelta, pathlib; "
         "compileall.compile_dir(pathlib.Path(marketdelta.__file__).parent, quiet=1)"],
        check=True,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-markets", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=None, help="Keep generated panels here.")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="marketdelta-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, work dir {work}")
    compile_package()
    lines = [t.line() for t in startup_targets(work)]
    for line in lines:
        print(line, flush=True)
    per_million, one_core, timings, startups = {}, {}, [], []
    for markets in (10_000, 100_000, 1_000_000):
        if markets > args.max_markets:
            continue
        # Targets 4 and 5 are defined at 10^6 markets; smaller panels show how costs grow.
        targets, observations, startup = big_targets(work, markets, markets == 1_000_000)
        per_million[markets] = paired_difference(targets[0].ours, startup) / (observations / 1e6)
        if markets < 1_000_000:  # one core at 10^6 would add minutes for no more insight
            one_core[markets] = one_core_per_million(work, markets, observations)
        startups.append(startup.seconds)
        timings.append((markets, observations, targets[0].ours.seconds))
        for target in targets:
            print(target.line(), flush=True)
    if per_million:
        middle = statistics.median(per_million.values())
        spread = max(abs(v / middle - 1) for v in per_million.values())
        detail = ", ".join(f"{m:,}: {s:.2f} s" for m, s in per_million.items())
        verdict = ("PASS" if spread <= 0.3 else "MISS") if len(per_million) > 1 else "info"
        print(
            f"{verdict}  6. time per million observations, start-up "
            f"({'/'.join(f'{s:.2f}' for s in startups)} s) excluded run by run "
            f"({detail}); at most {spread:.0%} from their median (limit 30%)"
        )
        steps = [
            f"{a:,} to {b:,} markets: {(tb - ta) / ((ob - oa) / 1e6):.2f} s"
            for (a, oa, ta), (b, ob, tb) in itertools.pairwise(timings)
        ]
        if steps:  # steadier than the ratios above when start-up dwarfs the smallest panel
            print(f"info     marginal cost per million observations: {', '.join(steps)}")
    if args.max_markets >= 1_000_000:
        for target in wide_targets(work, 1_000_000):
            print(target.line(), flush=True)
    if len(one_core) > 1:
        first, second = one_core.values()
        print(
            "info     6. the same on one core (MARKETDELTA_THREADS=1): "
            f"{', '.join(f'{m:,}: {s:.2f} s' for m, s in one_core.items())}; "
            f"{abs(first / second - 1):.0%} apart"
        )
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
