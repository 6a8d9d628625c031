"""Steps the scale benchmark runs in child processes (see `benchmarks.measure`), on either engine."""

from __future__ import annotations

import dataclasses
import os
from datetime import timedelta

from features.settings import Settings
from features.snapshots import parse_cutoff_range


def _settings(home: str, engine: str) -> Settings:
    return dataclasses.replace(Settings.resolve(home), engine=engine)


def synth(home: str, engine: str, customers: int, seed: int) -> dict:
    """`tierwise data synth`: generate the shop, then its derived tables on `engine`."""
    from features.data.store import DataStore
    from features.data.synth import generate
    from pipelines.import_data import summarizer

    settings = _settings(home, engine)
    report = generate(DataStore(settings.data_dir), customers, seed, summarize=summarizer(settings))
    return {"orders": report.orders, "lines": report.order_lines}


def derive(home: str, engine: str) -> int:
    """The derived tables of the live data, rewritten on `engine` (the summarizing part of an import)."""
    from pipelines.import_data import refresh_derived_tables

    refresh_derived_tables(_settings(home, engine))
    return 0


def last_cutoff(home: str) -> str:
    from features.live_data import open_live_data
    from features.snapshots import data_period

    period = data_period(open_live_data(Settings.resolve(home)))
    return (period.last_order.date() + timedelta(days=1)).isoformat()


def build(home: str, engine: str, cutoff_spec: str) -> int:
    """`tierwise features build` at the cutoffs of FIRST:LAST:STEP on `engine`; returns customer rows."""
    from pipelines.build_features import build as build_features

    return sum(build_features(_settings(home, engine), parse_cutoff_range(cutoff_spec)).values())


#: The training plan of `benchmarks/bench_train.py` on a synthetic year: a 60-day horizon and cutoffs
#: every 61 days (nine snapshot dates), so that the step's figures compare with its.
TRAIN_HORIZON, TRAIN_STEP = 60, 61


def training_cutoffs(home: str, engine: str) -> int:
    """The feature snapshots a churn training run reads (`TRAIN_HORIZON`, `TRAIN_STEP`), built on
    `engine` if missing: timed apart from the training itself, which then reads them."""
    from features.live_data import open_live_data
    from features.snapshots import data_period
    from pipelines.train import ensure_snapshots
    from training.backtest_plan import plan

    settings = _settings(home, engine)
    period = data_period(open_live_data(settings))
    cutoffs = plan(
        period.first_order.date(), period.last_order.date() + timedelta(days=1), TRAIN_HORIZON, TRAIN_STEP
    ).all_cutoffs
    ensure_snapshots(settings, cutoffs)
    return len(cutoffs)


def train(home: str, engine: str) -> dict:
    """`tierwise train --model churn --horizon 60 --step 61` (default parameters, nothing registered)
    from the built snapshots, on `Settings.train_sample` of the customers when `TIERWISE_TRAIN_SAMPLE`
    is set."""
    from features.settings import MLFLOW_ENV
    from pipelines.train import train as train_models

    os.environ.pop(MLFLOW_ENV, None)  # the run is logged in the home's own MLflow, not the models'
    settings = _settings(home, engine)
    (result,) = train_models(settings, ["churn"], None, TRAIN_HORIZON, step_days=TRAIN_STEP, register=False)
    return {"test": {name: round(value, 4) for name, value in result.test_metrics.items()}}


def score(home: str, engine: str) -> dict:
    """`tierwise score` of the latest snapshot on `engine`, with the champions of
    `TIERWISE_MLFLOW_URI`'s registry; the home has no online store, so no answers are stored."""
    from pipelines.score import score as score_customers

    report = score_customers(_settings(home, engine))
    return {"customers": report.customers, "tiers": report.tier_counts}
