"""The heavy batch steps on DuckDB and on Spark (local mode, same cores), at one scale, in one table.

    .venv/bin/python -m benchmarks.bench_scale --home H [--engines duckdb,spark] [--repeat 3]
        [--steps derived,one,twelve]
    .venv/bin/python -m benchmarks.bench_scale --customers 1000000 --work /work/bench/scale ...

`--home` reuses a home with synthetic data (`tierwise data synth`); `--customers` generates one under
`--work` first (DuckDB's derived tables; its time is printed). Steps, each in a fresh process
(`benchmarks.measure`): `derived` rewrites the derived tables (the summarizing half of an import),
`one` builds the features at the day after the last order, `twelve` at 12 monthly cutoffs ending there.
Each step runs `--repeat` times per engine, alternating engines, and the table shows the median wall
time with its range, the peak memory of the process with the programs it starts (Spark's JVM), the
home's disk use after the step, and Spark's time as a multiple of DuckDB's in the same run.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
from datetime import date
from pathlib import Path

from benchmarks.measure import Measurement, measure

S = "benchmarks.scale_steps:"


def disk_gb(home: Path) -> float:
    return sum(p.stat().st_size for p in (home / "data").rglob("*") if p.is_file()) / 2**30


def twelve_months(last: str) -> str:
    """12 monthly cutoffs, the last one `last` (the first 11 months earlier)."""
    end = date.fromisoformat(last)
    year, month = divmod(end.year * 12 + end.month - 1 - 11, 12)
    first = date(year, month + 1, min(end.day, 28))
    return f"{first.isoformat()}:{end.isoformat()}:1m"


def run_step(home: str, step: str, engine: str, cutoff: str) -> Measurement:
    if step == "derived":
        return measure(S + "derive", home, engine)
    if step == "one":
        return measure(S + "build", home, engine, f"{cutoff}:{cutoff}:1d")
    return measure(S + "build", home, engine, twelve_months(cutoff))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path)
    parser.add_argument("--customers", type=int)
    parser.add_argument("--work", type=Path, default=Path("/tmp/tierwise-bench-scale"))
    parser.add_argument("--engines", default="duckdb,spark")
    parser.add_argument("--steps", default="derived,one,twelve")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.home is None:
        if not args.customers:
            parser.error("give --home or --customers")
        args.home = args.work / f"synth-{args.customers}"
        shutil.rmtree(args.home, ignore_errors=True)
        made = measure(S + "synth", str(args.home), "duckdb", args.customers, 7)
        print(f"generated {args.customers:,} customers ({made.result}) in {made.seconds:.0f} s", flush=True)
    home = str(args.home)
    engines = args.engines.split(",")
    cutoff = measure(S + "last_cutoff", home).result
    print(f"home {home}, cutoff {cutoff}; median (min-max) of {args.repeat}", flush=True)
    print(f"{'step':<10} {'engine':<7} {'seconds':>22} {'peak GB':>8} {'disk GB':>8} {'vs duckdb':>10}")
    for step in args.steps.split(","):
        runs: dict[str, list[Measurement]] = {engine: [] for engine in engines}
        disk: dict[str, float] = {}
        for _ in range(args.repeat):
            for engine in engines:
                runs[engine].append(run_step(home, step, engine, cutoff))
                disk[engine] = disk_gb(args.home)
        reference = statistics.median(
            m.seconds for m in runs.get("duckdb", []) or [Measurement(float("nan"), 0, 0)]
        )
        for engine in engines:
            seconds = [m.seconds for m in runs[engine]]
            median = statistics.median(seconds)
            spread = f"{median:8.1f} ({min(seconds):.1f}-{max(seconds):.1f})"
            peak = max(m.tree_peak_mb for m in runs[engine]) / 1024
            ratio = f"{median / reference:9.2f}x" if engine != "duckdb" else ""
            print(
                f"{step:<10} {engine:<7} {spread:>22} {peak:8.2f} {disk[engine]:8.2f} {ratio:>10}", flush=True
            )


if __name__ == "__main__":
    main()
