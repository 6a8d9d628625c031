"""Loading the online store: our bulk load (`tierwise features materialize`) against Feast's plain
`materialize`, on SQLite and on Redis, in one run.

    .venv/bin/python -m benchmarks.bench_online_load --home H [--subset 50000] [--repeat 3]
        [--stores sqlite,redis] [--work DIR]

`--home` holds the feature snapshots of many customers, for example one made by
`TIERWISE_HOME=H tierwise data synth --customers 1000000 --seed 7` and
`TIERWISE_HOME=H tierwise features build --as-of 2025-01-01` (a million customers × 58 features in
six views). For each store it times, each step in a fresh process (`benchmarks.measure`: wall time
without imports, peak RSS of the process, and of the process with the writers it forks on SQLite):

Feast is imported before the clock starts (about 6 s), for both.

1. the bulk load of the home's latest snapshot, `--repeat` times (median, and the spread);
2. on a home holding only the first `--subset` customers of that snapshot (Feast's plain
   `materialize` of a million customers takes about half an hour and 13-16 GB): the bulk load, and
   Feast's `FeatureStore.materialize` over the snapshot's timestamp into an empty store of the same
   type;
3. the ratio of Feast's time per customer to ours: on the subset, and against the full load.

Redis: a throwaway `redis-server` on a free port (no persistence), emptied before every load; its
own peak memory is printed too. Homes for the subset go under `--work`; the SQLite online store of a
million customers is about 10 GB on disk.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from datetime import timedelta
from pathlib import Path

# Imported before a step's clock starts (`benchmarks.measure` times the call, not the imports of the
# step's module): importing Feast takes about 6 s, which is not loading, for us or for Feast.
import feast  # noqa: F401

from benchmarks.measure import Measurement, measure

S = "benchmarks.bench_online_load:"


def _settings(home: str, redis: str | None):
    from features.settings import Settings

    return Settings(Path(home).resolve(), "redis" if redis else "sqlite", redis or "127.0.0.1:6379")


def register(home: str, redis: str | None) -> None:
    """Register the Feast definitions (and create the empty SQLite store) — not timed."""
    from features import feature_store

    feature_store.apply(_settings(home, redis))


def bulk_load(home: str, redis: str | None) -> int:
    from features import feature_store

    return feature_store.materialize(_settings(home, redis))[1]


def plain_materialize(home: str, redis: str | None) -> int:
    """Feast's own `materialize` over the latest snapshot's timestamp."""
    import pandas as pd

    from features import feature_store

    settings = _settings(home, redis)
    day = settings.feature_snapshots.dates()[-1]
    stamp = feature_store.snapshot_timestamp(day)
    feature_store.open_store(settings).materialize(
        start_date=stamp - timedelta(seconds=1), end_date=stamp + timedelta(seconds=1)
    )
    return len(pd.read_parquet(settings.feature_snapshots.path(day), columns=["customer_id"]))


def subset_home(source: str, target: str, customers: int) -> int:
    """A home whose only snapshot is the first `customers` rows of `source`'s latest one."""
    import pyarrow.parquet as pq

    from features.settings import Settings

    latest = Settings.resolve(source).feature_snapshots
    path = latest.path(latest.dates()[-1])
    folder = Settings.resolve(target).snapshots_dir
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pq.read_table(path).slice(0, customers), folder / path.name)
    return customers


def _flush(redis: str | None) -> None:
    if redis:
        import redis as client

        host, port = redis.split(":")
        client.Redis(host=host, port=int(port)).flushall()


def _redis_peak(redis: str) -> str:
    import redis as client

    host, port = redis.split(":")
    return client.Redis(host=host, port=int(port)).info("memory")["used_memory_peak_human"]


def _line(label: str, m: Measurement, rows: int, reference: float | None = None) -> str:
    per_row = m.seconds / rows * 1e6
    text = (
        f"{label:<46} {m.seconds:8.1f} s  {rows / m.seconds:10,.0f} rows/s  {per_row:8.1f} µs/row  "
        f"peak {m.peak_mb / 1024:5.2f} GiB (with its writer processes {m.tree_peak_mb / 1024:5.2f})"
    )
    if reference:
        text += f"  Feast/ours per row {reference / per_row:5.1f}x"
    return text


def bench_store(store: str, home: str, subset: str, customers: int, repeat: int, redis: str | None) -> None:
    measure(S + "register", home, redis)
    loads = []
    for _ in range(repeat):
        _flush(redis)
        loads.append(measure(S + "bulk_load", home, redis))
    rows = loads[0].result
    median = sorted(loads, key=lambda m: m.seconds)[(len(loads) - 1) // 2]
    times = [m.seconds for m in loads]
    _flush(redis)
    measure(S + "register", subset, redis)
    ours_small = measure(S + "bulk_load", subset, redis)
    _flush(redis)
    measure(S + "register", subset + "-plain", redis)
    plain = measure(S + "plain_materialize", subset + "-plain", redis)
    plain_per_row = plain.seconds / plain.result * 1e6
    print(f"\n{store}: {rows:,} customers, subset {customers:,}")
    print(_line(f"bulk load, {rows:,} (median of {repeat})", median, rows, plain_per_row))
    spread = f"{min(times):.1f}–{max(times):.1f} s (±{(max(times) - min(times)) / 2 / statistics.median(times):.0%})"
    print(f"{'':<46} runs {', '.join(f'{t:.1f}' for t in times)} s; spread {spread}")
    print(_line(f"bulk load, {customers:,}", ours_small, customers, plain_per_row))
    print(_line(f"Feast plain materialize, {customers:,} (ref.)", plain, plain.result))
    if redis:
        print(f"{'':<46} redis-server peak memory over the run: {_redis_peak(redis)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", required=True, help="a home with feature snapshots (the latest is loaded)")
    parser.add_argument("--subset", type=int, default=50_000, help="customers for the comparison with Feast")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stores", default="sqlite,redis")
    parser.add_argument("--work", default="/work/bench", help="folder for the subset homes")
    args = parser.parse_args()
    Path(args.work).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="tierwise-bench-online-load-", dir=args.work))
    subset = str(work / "subset")
    for target in (subset, subset + "-plain"):
        measure(S + "subset_home", args.home, target, args.subset)
    print(f"work folder: {work}")
    try:
        for store in args.stores.split(","):
            if store == "sqlite":
                bench_store("SQLite", args.home, subset, args.subset, args.repeat, None)
                continue
            from tests.service_process import RedisServer

            server = RedisServer(shutil.which("redis-server") or "redis-server", work)
            try:
                bench_store("Redis", args.home, subset, args.subset, args.repeat, server.address)
            finally:
                server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
