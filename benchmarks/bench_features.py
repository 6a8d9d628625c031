"""Feature build, materialize and online read, as ratios to references measured in the same run.

    .venv/bin/python -m benchmarks.bench_features [--work /work/bench] [--customers 1000000]
        [--cj-home H] [--synthetic-home H] [--skip-synthetic] [--skip-materialize] [--repeat 3]

1. Complete Journey: the full feature set at one cutoff and at 40 weekly cutoffs, against a minimal
   hand-written DuckDB query (30/90/365-day order counts and spend per customer at one cutoff).
2. Synthetic `--customers`: one cutoff and 12 monthly cutoffs, the same reference; then loading the
   latest snapshot into the SQLite online store with our bulk load, against Feast's plain
   `materialize` of the first 100k customers (same store type, same run), and online read latency
   for 1 and 100 customers per call. `benchmarks/bench_online_load.py` does the load comparison on
   SQLite and Redis, with repeats.

Each data set also reports the time of its derived tables (`features.data.derived`), which every
import writes once so that feature builds never read order lines. Homes are created under `--work`
(not the system temp folder: a million customers need ~10 GB with spill; the SQLite online store
of a million customers another 12 GB).
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterable
from datetime import date
from pathlib import Path

from benchmarks.measure import Measurement, measure, row

S = "benchmarks.feature_steps:"


def bench_builds(home: str, label: str, many_spec: str | None, many_label: str, repeat: int = 1) -> None:
    """Derived tables, the references, then the full build at one cutoff and at `many_spec`.

    The one-cutoff build and the reference over orders alternate `repeat` times and the medians are
    compared: on a shared machine a single pair can be off by a third either way.
    """
    derive = measure(S + "derive", home)
    print(row(f"{label}: derived tables (part of each import)", derive, derive.result), flush=True)
    last = measure(S + "last_cutoff", home).result
    one_spec = f"{last}:{last}:1d"
    ref_lines = measure(S + "minimal_query", home, last, "order_lines")
    print(row(f"{label}: minimal query over order lines", ref_lines, ref_lines.result), flush=True)
    pairs = [
        (measure(S + "minimal_query", home, last, "orders"), measure(S + "build", home, one_spec))
        for _ in range(repeat)
    ]
    ref_orders = _median(p[0] for p in pairs)
    one = _median(p[1] for p in pairs)
    print(row(f"{label}: minimal query over orders (reference)", ref_orders, ref_orders.result), flush=True)
    print(row(f"{label}: full features, 1 cutoff ({last})", one, one.result, ref_orders))
    if repeat > 1:
        print(
            f"{'':<52} medians of {repeat}; ratios per pair: "
            + ", ".join(f"{b.seconds / r.seconds:.2f}" for r, b in pairs)
        )
    print(f"{'':<52} {one.seconds / ref_lines.seconds:6.1f}x the order-lines reference", flush=True)
    if many_spec:
        many = measure(S + "build", home, many_spec)
        print(row(f"{label}: full features, {many_label}", many, many.result, ref_orders), flush=True)


def _median(measurements: Iterable[Measurement]) -> Measurement:
    """The measurement with the median time (its own peak memory and result)."""
    ordered = sorted(measurements, key=lambda m: m.seconds)
    return ordered[(len(ordered) - 1) // 2]


def bench_materialize(home: str, work: Path) -> None:
    """Our bulk load of the latest snapshot vs Feast's plain materialize, then online read latency."""
    full = measure(S + "chunked_materialize", home)
    print(row(f"bulk load of {full.result:,} customers (SQLite)", full, full.result), flush=True)
    small_chunked, small_plain = str(work / "m100k-chunked"), str(work / "m100k-plain")
    day = measure(S + "subset_home", home, small_chunked, 100_000).result
    measure(S + "subset_home", home, small_plain, 100_000)
    chunked = measure(S + "chunked_materialize", small_chunked)
    plain = measure(S + "plain_feast_materialize", small_plain, day)
    print(row("feast plain materialize, 100k customers (reference)", plain, plain.result))
    print(row("our bulk load, 100k customers", chunked, chunked.result, plain))
    per_row_full = full.seconds / full.result
    print(
        f"{'':<52} per row at {full.result:,}: {per_row_full / (plain.seconds / plain.result):.2f}x the plain call's"
    )
    for batch, calls in ((1, 500), (100, 100)):
        latency = measure(S + "online_latency", home, batch, calls).result
        print(
            f"get_online_features, {batch:>3} customer(s)/call: p50 {latency['p50_ms']:.2f} ms, p99 {latency['p99_ms']:.2f} ms"
        )


def months_before(day: date, months: int) -> date:
    """The same day of the month `months` earlier (at most the 28th, so that every month has it)."""
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, min(day.day, 28))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", default="/work/bench", help="folder for the benchmark's homes")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--cj-home", help="reuse a home that already holds Complete Journey")
    parser.add_argument("--synthetic-home", help="reuse a home that already holds the synthetic data")
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--skip-materialize", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="pairs of reference and one-cutoff build")
    args = parser.parse_args()
    Path(args.work).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="tierwise-bench-features-", dir=args.work))
    print(f"work folder: {work}")

    cj = args.cj_home or str(work / "cj")
    if not args.cj_home:
        imported = measure(S + "import_cj", cj)
        print(row("Complete Journey import", imported, imported.result), flush=True)
    bench_builds(cj, "Complete Journey", "2017-03-12:2017-12-10:7d", "40 weekly cutoffs", args.repeat)
    if args.skip_synthetic:
        return

    home = args.synthetic_home or str(work / "synthetic")
    if not args.synthetic_home:
        gen = measure(S + "synth", home, args.customers, 7)
        print(row(f"synthetic data, {args.customers:,} customers", gen, gen.result["lines"]), flush=True)
    last = date.fromisoformat(measure(S + "last_cutoff", home).result)
    bench_builds(
        home,
        f"synthetic {args.customers // 1000}k",
        f"{months_before(last, 11)}:{last}:1m",
        "12 monthly cutoffs",
        args.repeat,
    )
    if not args.skip_materialize:
        bench_materialize(home, work)


if __name__ == "__main__":
    main()
