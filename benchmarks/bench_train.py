"""`tierwise train` wall time and peak memory: Complete Journey with tuning, synthetic customers at scale,
and what training on a sample of customers costs in accuracy.

    .venv/bin/python -m benchmarks.bench_train [--work /work/bench] [--cj-home H | --no-cj] [--trials 30]
        [--synthetic-home H] [--synthetic-horizon 60] [--synthetic-step 61] [--synthetic-model churn]
        [--synthetic-trials 0] [--samples 0.25,0.1] [--sample-seed 0]

1. Complete Journey: `train --model all --as-of 2017-10-01 --horizon 92 --trials N`, the README's run.
2. With `--synthetic-home` (a home holding `tierwise data synth` output, e.g. the one
   `benchmarks.bench_features` leaves behind; its snapshots are reused, missing cutoffs are built and
   counted): one model (`--synthetic-model`) with `--synthetic-trials` Optuna trials, on every
   customer. A year of synthetic orders needs a horizon below 92 days for three training cutoffs
   (the command says how much is needed).
3. With `--samples`: the same run once per share of customers (`TIERWISE_TRAIN_SAMPLE`, seeded by
   `--sample-seed`), each tested on every customer of the same test cutoff; the table gives each
   run's ROC-AUC and normalized Gini with 95% bootstrap intervals (customers resampled) and its
   difference to the full run, paired: the same resamples score both models.

Each run is a fresh process on a copy of the home (peak RSS is that run's, of the process and the
programs it starts). Session 3 measured the synthetic run before training read the snapshots one
cutoff at a time: 1M customers, churn, 60-day horizon, cutoffs every 61 days, 17 min 48 s and
21.1 GB peak (Feast's point-in-time join of every example at once); the README has today's figures.

Runs are not bit-for-bit repeatable: DuckDB's parallel sums differ in the last bits between two builds
of the same snapshot (3.6e-12 on lifetime spend), which can change which Optuna trial wins (churn test
AUC 0.874 and 0.868 on two builds of Complete Journey).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import tempfile
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.measure import Measurement, measure, row

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


def train_sampled(
    home: str,
    model: str,
    horizon: int,
    trials: int,
    step: int,
    share: float | None,
    seed: int,
    predictions: str,
) -> dict:
    """One model trained on a `share` of customers (None: all), its test predictions written to the
    Parquet file `predictions`; returns the test metrics and the examples of each part."""
    from features.settings import Settings
    from pipelines.train import train as run_training

    settings = dataclasses.replace(Settings.resolve(home), train_sample=share, train_sample_seed=seed)
    (result,) = run_training(settings, [model], None, horizon, trials, step, test_on_all=True)
    result.test_predictions.to_parquet(predictions)
    return result.test_metrics


def quality_table(
    runs: dict[str, pd.DataFrame], label: str, n_boot: int = 200, seed: int = 0
) -> pd.DataFrame:
    """ROC-AUC and normalized Gini of each run's test predictions with 95% bootstrap intervals, and
    each run's difference to the first (the full run) on the same resamples of customers.

    Args:
        runs: Run name → `TrainResult.test_predictions` of the same test rows; the first is the reference.
        label: The label column (`churn`: ROC-AUC applies; any label: normalized Gini).
    """
    from sklearn.metrics import roc_auc_score

    from training.metrics import normalized_gini

    names = list(runs)
    first = runs[names[0]].set_index("customer_id")
    y = first[label].to_numpy()
    scores = {n: runs[n].set_index("customer_id").loc[first.index, "prediction"].to_numpy() for n in names}
    binary = set(np.unique(y)) <= {0.0, 1.0}
    metrics = {"normalized_gini": normalized_gini}
    if binary:
        metrics = {"roc_auc": roc_auc_score, **metrics}
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, len(y), len(y)) for _ in range(n_boot)]
    rows = []
    for metric, fn in metrics.items():
        reference = np.array([fn(y[d], scores[names[0]][d]) for d in draws])
        for name in names:
            point = fn(y, scores[name])
            values = np.array([fn(y[d], scores[name][d]) for d in draws])
            diff = values - reference
            rows.append(
                {
                    "run": name,
                    "metric": metric,
                    "value": point,
                    "low": np.quantile(values, 0.025),
                    "high": np.quantile(values, 0.975),
                    "vs_full": point - fn(y, scores[names[0]]),
                    "vs_full_low": np.quantile(diff, 0.025),
                    "vs_full_high": np.quantile(diff, 0.975),
                }
            )
    return pd.DataFrame(rows)


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
    parser.add_argument("--no-cj", action="store_true", help="skip the Complete Journey run")
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--synthetic-home", help="a home holding synthetic data (skipped if absent)")
    parser.add_argument("--synthetic-horizon", type=int, default=60)
    parser.add_argument("--synthetic-step", type=int, default=61)
    parser.add_argument("--synthetic-model", default="churn")
    parser.add_argument("--synthetic-trials", type=int, default=0)
    parser.add_argument("--samples", default="", help="shares of customers to train on besides all: 0.25,0.1")
    parser.add_argument("--sample-seed", type=int, default=0)
    args = parser.parse_args()
    Path(args.work).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="tierwise-bench-train-", dir=args.work))
    print(f"work folder: {work}", flush=True)

    if not args.no_cj:
        if args.cj_home:
            cj = copy_home(args.cj_home, work / "cj")
        else:
            cj = str(work / "cj")
            measure("benchmarks.feature_steps:import_cj", cj)
        run = measure(S + "train", cj, "all", "2017-10-01", 92, args.trials, 7)
        print(row(f"Complete Journey: 3 models, {args.trials} trials each", run), flush=True)
        print(f"{'':<52} test metrics {run.result}", flush=True)

    if args.synthetic_home:
        model, trials = args.synthetic_model, args.synthetic_trials
        home = copy_home(args.synthetic_home, work / "synthetic")
        shares = [None, *(float(s) for s in args.samples.split(",") if s)]
        predictions = {}
        for share in shares:
            name = "all customers" if share is None else f"{share:.0%} of customers"
            out = work / f"predictions-{share or 1}.parquet"
            run: Measurement = measure(
                S + "train_sampled", home, model, args.synthetic_horizon, trials, args.synthetic_step,
                share, args.sample_seed, str(out),
            )  # fmt: skip
            print(row(f"synthetic: {model}, {trials} trials, {name}", run), flush=True)
            print(f"{'':<52} peak of the process tree {run.tree_peak_mb:,.0f} MB", flush=True)
            print(f"{'':<52} test metrics {run.result}", flush=True)
            predictions[name] = pd.read_parquet(out)
        if len(predictions) > 1:
            label = next(
                c for c in predictions["all customers"].columns if c not in ("customer_id", "prediction")
            )
            table = quality_table(predictions, label)
            print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"), flush=True)


if __name__ == "__main__":
    main()
