"""Import throughput and peak memory, as ratios to DuckDB reading the same file in the same run.

    .venv/bin/python -m benchmarks.bench_import [--customers 1000000] [--skip-synthetic]
        [--lines-file F] [--engines duckdb,spark] [--repeat N]

Prints one line per step. Complete Journey (1.47M lines) always; a synthetic dataset of
`--customers` customers is generated, exported as one Parquet file of order lines, and imported
through the same mapped-file path a shop's export takes, into an empty home, on each engine of
`--engines` in turn (`--repeat` rounds): the import's wall time and peak (with Spark's JVM), split
into the checks and writes and the derived tables, and each engine's time as a multiple of DuckDB's
in the same round.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from benchmarks.measure import measure, row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--lines-file", help="reuse an exported synthetic lines file (skips generation)")
    parser.add_argument("--skip-cj", action="store_true")
    parser.add_argument("--engines", default="duckdb", help="duckdb, spark or both, comma-separated")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tierwise-bench-import-"))
    print(f"work folder: {work}")

    if not args.skip_cj:
        bench_cj(work)
    if args.skip_synthetic:
        return
    if args.lines_file:
        export = args.lines_file
    else:
        gen = measure("benchmarks.import_steps:synth", str(work / "synth"), args.customers, 7)
        print(
            row(f"tierwise data synth --customers {args.customers:,}", gen, gen.result["lines"]), flush=True
        )
        export = str(work / "synthetic_lines.parquet")
        measure("benchmarks.import_steps:export_lines", str(work / "synth"), export)
    count = measure("benchmarks.import_steps:duckdb_count", export)
    full = measure("benchmarks.import_steps:duckdb_full_read", export)
    n = count.result
    print(row("duckdb count(*) of the synthetic lines file", count, n))
    print(row("duckdb full read of the synthetic lines file", full, n))
    for round_ in range(args.repeat):
        seconds = {}
        for engine in args.engines.split(","):
            home = work / f"synth-import-{engine}-{round_}"
            ours = measure("benchmarks.import_steps:import_lines_file", str(home), export, engine)
            seconds[engine] = ours.seconds
            print(row(f"tierwise --engine {engine} data import <lines.parquet>", ours, n, count), flush=True)
            tree = f"{ours.tree_peak_mb:,.0f} MB" if ours.tree_peak_mb else "-"
            ratio = f"; {ours.seconds / seconds['duckdb']:.2f}x DuckDB's" if "duckdb" in seconds else ""
            print(f"{'':<52} with its children {tree}{ratio}; {ours.result}", flush=True)
            shutil.rmtree(home, ignore_errors=True)


def bench_cj(work: Path) -> None:
    cj = measure("benchmarks.import_steps:cj_transactions_path").result
    count = measure("benchmarks.import_steps:duckdb_count", cj)
    full = measure("benchmarks.import_steps:duckdb_full_read", cj)
    ours = measure("benchmarks.import_steps:import_cj", str(work / "cj"))
    lines = ours.result
    print(row("duckdb count(*) of transactions.parquet", count, lines))
    print(row("duckdb full read of transactions.parquet", full, lines))
    print(row("tierwise import completejourney", ours, lines, count))
    print(f"{'':<52} {ours.seconds / full.seconds:6.1f}x the full read", flush=True)


if __name__ == "__main__":
    main()
