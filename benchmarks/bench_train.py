"""`tierwise train` wall time and peak memory: Complete Journey with tuning, synthetic customers at scale.

    .venv/bin/python -m benchmarks.bench_train [--work /work/bench] [--cj-home H] [--trials 30]
        [--synthetic-home H] [--synthetic-horizon 60] [--synthetic-step 61]

1. Complete Journey: `train --model all --as-of 2017-10-01 --horizon 92 --trials N`, the README's run.
2. With `--synthetic-home` (a home holding `tierwise data synth` output, e.g. the one
   `benchmarks.bench_features` leaves behind; its snapshots are reused, missing cutoffs are built and
   counted): one model, `train --model churn` with default parameters. A year of synthetic orders
   needs a horizon below 92 days for three training cutoffs (the command says how much is needed).

Each run is a fresh process on a copy of the home (peak RSS is that run's). Measured on the 2-core
machine in session 3, always with other benchmarks beside it: Complete Journey, 30 trials x 3 models,
3 min 0 s and 5 min 53 s, 2.0 GB; synthetic 1M customers, churn, 60-day horizon, cutoffs every 61
days (1.84M training examples, 2.5M for the deployed refit): 17 min 48 s, 21.1 GB peak. Memory, not
time, limits a training run's size on this 24 GB machine.

Runs are not bit-for-bit repeatable: DuckDB's parallel sums differ in the last bits between two builds
of the same snapshot (3.6e-12 on lifetime spend), which can change which Optuna trial wins (churn test
AUC 0.874 and 0.868 on two builds of Complete Journey).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from datetime import date
from pathlib import Path

from benchmarks.measure import measure, row

S = "benchmarks.bench_train:"


def train(home: str, model: str, as_of: str | None, horizon: int, trials: int, step: int) -> dict:
    """One `tierwise train` as the CLI runs it; returns the examples per part and the test metrics."""
    from features.settings import Settings
    from pipelines.train import train as run_training

    results = run_training(
        Settings.resolve(home),
        ["churn", "customer_value", "growth_potential"] if model == "all" else [model],
        date.fromisoformat(as_of) if as_of else None,
        horizon,
        trials,
        step,
    )
    return {r.name: r.test_metrics for r in results}


def copy_home(source: str, target: Path) -> str:
    """The home's data without models, online store or tiers: each run starts from the same state."""
    ignore = shutil.ignore_patterns("mlruns", "online_store.db", "tiers", "alerts", "reports", ".spill")
    shutil.copytree(source, target, symlinks=True, ignore=ignore)
    return str(target)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", default="/work/bench", help="folder for the benchmark's homes")
    parser.add_argument("--cj-home", help="a home that already holds Complete Journey")
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--synthetic-home", help="a home holding synthetic data (skipped if absent)")
    parser.add_argument("--synthetic-horizon", type=int, default=60)
    parser.add_argument("--synthetic-step", type=int, default=61)
    args = parser.parse_args()
    Path(args.work).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="tierwise-bench-train-", dir=args.work))
    print(f"work folder: {work}", flush=True)

    if args.cj_home:
        cj = copy_home(args.cj_home, work / "cj")
    else:
        cj = str(work / "cj")
        measure("benchmarks.feature_steps:import_cj", cj)
    run = measure(S + "train", cj, "all", "2017-10-01", 92, args.trials, 7)
    print(row(f"Complete Journey: 3 models, {args.trials} trials each", run), flush=True)
    print(f"{'':<52} test metrics {run.result}", flush=True)

    if args.synthetic_home:
        home = copy_home(args.synthetic_home, work / "synthetic")
        run = measure(S + "train", home, "churn", None, args.synthetic_horizon, 0, args.synthetic_step)
        print(row("synthetic: churn, default parameters", run), flush=True)
        print(f"{'':<52} test metrics {run.result}", flush=True)


if __name__ == "__main__":
    main()
