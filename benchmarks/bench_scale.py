"""The heavy batch steps on DuckDB and on Spark (local mode, same cores), at one scale, in one table.

    .venv/bin/python -m benchmarks.bench_scale --home H [--engines duckdb,spark] [--repeat 3]
        [--steps derived,one,twelve,cutoffs,train,score,redis] [--models-home M]
    .venv/bin/python -m benchmarks.bench_scale --customers 1000000 --work /work/bench/scale ...

`--home` reuses a home with synthetic data (`tierwise data synth`); `--customers` generates one under
`--work` first (DuckDB's derived tables; its time and peak are printed). Steps, each in a fresh process
(`benchmarks.measure`):

- `derived` rewrites the derived tables (the summarizing half of an import);
- `one` builds the features at the day after the last order, `twelve` at 12 monthly cutoffs ending there;
- `cutoffs` builds the snapshots a training run reads (those missing; `bench_train`'s synthetic plan:
  60-day horizon, cutoffs every 61 days), `train` trains the churn model from them (default
  parameters, nothing registered; `TIERWISE_TRAIN_SAMPLE` samples customers);
- `score` is `tierwise score` of the latest snapshot with the champions of `--models-home` (a home
  trained on Complete Journey: same feature catalog, and training at this scale is the `train` step's
  business); no online store, so no answers are stored;
- `redis` loads the latest snapshot into a throwaway `redis-server` with the bulk load (`tierwise
  features materialize`); it does not depend on the engine, so it runs once per round, and the
  server's peak memory is printed.

Each step runs `--repeat` times per engine, alternating engines, and the table shows the median wall
time with its range, the peak memory of the process with the programs it starts (Spark's JVM), the
home's disk use after the step, and Spark's time as a multiple of DuckDB's in the same run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
from datetime import date
from pathlib import Path

from benchmarks.measure import Measurement, measure
from features.settings import MLFLOW_ENV
from tests.service_process import RedisServer

S = "benchmarks.scale_steps:"
L = "benchmarks.bench_online_load:"


def disk_gb(home: Path) -> float:
    return sum(p.stat().st_size for p in (home / "data").rglob("*") if p.is_file()) / 2**30


def twelve_months(last: str) -> str:
    """12 monthly cutoffs, the last one `last` (the first 11 months earlier)."""
    end = date.fromisoformat(last)
    year, month = divmod(end.year * 12 + end.month - 1 - 11, 12)
    first = date(year, month + 1, min(end.day, 28))
    return f"{first.isoformat()}:{end.isoformat()}:1m"


STEPS = ("derived", "one", "twelve", "cutoffs", "train", "score", "redis")


def run_step(home: str, step: str, engine: str, cutoff: str, redis: str | None) -> Measurement:
    if step == "derived":
        return measure(S + "derive", home, engine)
    if step == "one":
        return measure(S + "build", home, engine, f"{cutoff}:{cutoff}:1d")
    if step == "twelve":
        return measure(S + "build", home, engine, twelve_months(cutoff))
    if step == "cutoffs":
        return measure(S + "training_cutoffs", home, engine)
    if step == "redis":
        return load_redis(home, redis)
    return measure(S + {"train": "train", "score": "score"}[step], home, engine)


def load_redis(home: str, redis: str | None) -> Measurement:
    """The bulk load of `home`'s latest snapshot into the emptied server, from a home beside it that
    links to its snapshots (so the scored home never gets an online store, nor stored answers)."""
    import redis as client

    online = Path(f"{home}-online")
    link = online / "data" / "features" / "customer"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path(home).resolve() / "data" / "features" / "customer")
    host, port = redis.split(":")
    client.Redis(host=host, port=int(port)).flushall()
    measure(L + "register", str(online), redis)
    return measure(L + "bulk_load", str(online), redis)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path)
    parser.add_argument("--customers", type=int)
    parser.add_argument("--work", type=Path, default=Path("/tmp/tierwise-bench-scale"))
    parser.add_argument("--engines", default="duckdb,spark")
    parser.add_argument("--steps", default="derived,one,twelve", help=f"some of {','.join(STEPS)}")
    parser.add_argument("--models-home", type=Path, help="home whose MLflow registry holds the champions")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    steps = args.steps.split(",")
    if unknown := set(steps) - set(STEPS):
        parser.error(f"unknown steps {', '.join(sorted(unknown))}; expected some of {', '.join(STEPS)}")
    if "score" in steps and not args.models_home:
        parser.error("the score step needs --models-home")
    if args.models_home:
        os.environ[MLFLOW_ENV] = f"sqlite:///{args.models_home.resolve() / 'mlruns' / 'mlflow.db'}"
    if args.home is None:
        if not args.customers:
            parser.error("give --home or --customers")
        args.home = args.work / f"synth-{args.customers}"
        shutil.rmtree(args.home, ignore_errors=True)
        made = measure(S + "synth", str(args.home), "duckdb", args.customers, 7)
        print(
            f"generated {args.customers:,} customers ({made.result}) in {made.seconds:.0f} s, "
            f"peak {made.tree_peak_mb / 1024:.2f} GB, disk {disk_gb(args.home):.2f} GB",
            flush=True,
        )
    home = str(args.home)
    engines = args.engines.split(",")
    cutoff = measure(S + "last_cutoff", home).result
    print(f"home {home}, cutoff {cutoff}; median (min-max) of {args.repeat}", flush=True)
    print(f"{'step':<10} {'engine':<7} {'seconds':>22} {'peak GB':>8} {'disk GB':>8} {'vs duckdb':>10}")
    server = (
        RedisServer(shutil.which("redis-server") or "redis-server", args.work) if "redis" in steps else None
    )
    try:
        for step in steps:
            report_step(step, engines, home, cutoff, args.repeat, server.address if server else None)
        if server:
            print(f"redis-server peak memory: {redis_peak(server.address)}")
    finally:
        if server:
            server.stop()


def report_step(
    step: str, engines: list[str], home: str, cutoff: str, repeat: int, redis: str | None
) -> None:
    """Run `step` `repeat` times on each engine (alternating) and print a row per engine."""
    if step == "redis":
        engines = ["-"]
    runs: dict[str, list[Measurement]] = {engine: [] for engine in engines}
    disk: dict[str, float] = {}
    for _ in range(repeat):
        for engine in engines:
            runs[engine].append(run_step(home, step, engine, cutoff, redis))
            disk[engine] = disk_gb(Path(home))
    reference = statistics.median(
        m.seconds for m in runs.get("duckdb", []) or [Measurement(float("nan"), 0, 0)]
    )
    for engine in engines:
        seconds = [m.seconds for m in runs[engine]]
        median = statistics.median(seconds)
        spread = f"{median:8.1f} ({min(seconds):.1f}-{max(seconds):.1f})"
        peak = max(m.tree_peak_mb for m in runs[engine]) / 1024
        ratio = f"{median / reference:9.2f}x" if engine == "spark" and "duckdb" in runs else ""
        print(f"{step:<10} {engine:<7} {spread:>22} {peak:8.2f} {disk[engine]:8.2f} {ratio:>10}", flush=True)
        if step in ("train", "score"):
            print(f"{'':<10} {engine:<7} {runs[engine][-1].result}", flush=True)


def redis_peak(address: str) -> str:
    import redis as client

    host, port = address.split(":")
    return client.Redis(host=host, port=int(port)).info("memory")["used_memory_peak_human"]


if __name__ == "__main__":
    main()
