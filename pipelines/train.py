"""`tierwise train` and `tierwise backtest`: bring the data, then let `training.run` do each model.

Loads what a run needs — the live order data, feature snapshots at the plan's cutoffs, labels — and
hands each model's labelled examples to `training.run`, read one cutoff at a time from the snapshots (`features.feature_store.training_frames`: Feast's point-in-time
join, as a lookup per snapshot date) and split as they come, so memory holds the examples once.
With `Settings.train_sample`, every cutoff keeps a seeded share of its customers (the same
customers at each), the test cutoff too, so memory stays bounded whatever the number of customers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date, timedelta

import duckdb
import pandas as pd

from features import feature_store
from features.errors import InputError
from features.live_data import open_live_data
from features.settings import Settings
from features.snapshots import capabilities, data_period
from pipelines import build_features
from pipelines.home_lock import writes_home
from training import registry
from training.backtest_plan import plan
from training.labels import (
    CustomerSample,
    compute_labels,
    compute_labels_on_spark,
    labelled,
    outcome_end,
)
from training.level_anchor import LEVEL_ANCHOR_MODES
from training.models import SPECS
from training.run import (
    REFIT_PARTS,
    TEST_PARTS,
    TrainResult,
    backtest_model,
    leakage_message,
    lineage_tags,
    part_cutoffs,
    split_examples,
    train_model,
    trained_after,
)
from training.spec import ModelSpec

#: Days ahead the models predict unless told otherwise (a quarter: the seeds' review cycle).
DEFAULT_HORIZON_DAYS = 90
#: Days between training cutoffs unless told otherwise (weekly).
DEFAULT_STEP_DAYS = 7


@writes_home
def train(
    settings: Settings,
    model_names: list[str],
    as_of: date | None = None,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    trials: int = 0,
    step_days: int = DEFAULT_STEP_DAYS,
    on_step: Callable[[str], None] | None = None,
    register: bool = True,
    test_on_all: bool = False,
    level_anchor: str = "auto",
) -> list[TrainResult]:
    """Train, evaluate, register and (if better) promote each model as of `as_of` (default: today's data).

    With `test_on_all`, a run on a sample of customers (`Settings.train_sample`) is still tested on
    every customer of the test cutoff (to measure what the sample costs against a run on all of them,
    on the same rows); its refit learns from the sample there as at every other cutoff.

    `level_anchor` ("auto", "keep" or "drop"): whether the value model keeps its level anchor —
    decided on the test cutoff, or forced (`training.level_anchor.LevelChoice`)."""
    if level_anchor not in LEVEL_ANCHOR_MODES:
        raise InputError(f"level anchor {level_anchor!r}: expected one of {', '.join(LEVEL_ANCHOR_MODES)}")
    step = on_step or (lambda _: None)
    con = open_live_data(settings)
    period = data_period(con)
    as_of = as_of or period.last_order.date() + timedelta(days=1)
    the_plan = plan(period.first_order.date(), as_of, horizon_days, step_days)
    step(f"feature snapshots for {len(the_plan.all_cutoffs)} cutoffs")
    ensure_snapshots(settings, the_plan.all_cutoffs)
    feature_store.apply(settings)
    caps = capabilities(con)
    # Product breadth feeds only the growth label: the query over every order line is skipped otherwise.
    breadth = caps.products and any(SPECS[name].label == "growth" for name in model_names)
    sample = training_sample(settings, the_plan.test if test_on_all else None)
    labels = labels_on_engine(settings, con, the_plan.all_cutoffs, horizon_days, as_of, breadth, sample)
    fingerprint = _fingerprint(con, as_of, horizon_days, step_days)
    con.close()  # DuckDB keeps the labels query's buffers while open: 1.7 GB at a million customers
    registry.configure(settings)
    results = []
    for name in model_names:
        spec = SPECS[name]
        with registry.run(f"{name} as of {as_of}", lineage_tags(spec)):
            step(f"{name}: examples")
            # Read inside the run: Feast's MLflow integration tags it with the feature service, views
            # and entity count. Each cutoff's examples are split as they are read; the refit's parts
            # are read once the model is tested and its training parts are let go.
            rows = labelled(labels, spec.label)

            def read(chosen: tuple[str, ...], rows: pd.DataFrame = rows, spec: ModelSpec = spec) -> dict:
                days = part_cutoffs(the_plan, chosen)
                frames = feature_store.training_frames(settings, rows, spec.name, days)
                return split_examples(spec, frames, the_plan, chosen, sample)

            parts = read(TEST_PARTS)
            registry.log_params(sample_params(sample))
            for part, context in (("train", "training"), ("test", "evaluation")):
                registry.log_dataset(
                    parts[part].frame,
                    f"{spec.name} {part} examples (Feast feature service {spec.name})",
                    settings.snapshots_dir,
                    spec.label,
                    context,
                )
            results.append(
                train_model(
                    spec,
                    parts,
                    the_plan,
                    trials,
                    fingerprint,
                    step,
                    register,
                    refit_parts=lambda read=read: read(REFIT_PARTS),
                    level_anchor=level_anchor,
                )
            )
        del parts, rows
    return results


@writes_home
def rolling_backtest(
    settings: Settings,
    as_of: date,
    horizon_days: int,
    model_names: list[str],
    origins: int = 4,
    every_days: int = 28,
    trials: int = 0,
) -> pd.DataFrame:
    """Train and test each model as of `origins` dates, `every_days` apart back from `as_of`, and return
    every test's primary metric beside its baselines' (one row per model, origin and scorer).

    Each origin is a whole training run that reads no order at or after it and is tested on the
    cutoff whose horizon ends at it, so no figure leaks; nothing is registered or promoted. One test
    cutoff has a wide interval (a few hundred churners): the mean and spread over origins say more.
    """
    rows = []
    for k in range(origins):
        origin = as_of - timedelta(days=k * every_days)
        for result in train(settings, model_names, origin, horizon_days, trials, register=False):
            metric = SPECS[result.name].primary_metric
            rows.append(
                {
                    "model": result.name,
                    "origin": origin,
                    "scorer": "model",
                    metric: result.test_metrics[metric],
                }
            )
            for base, values in result.baseline_metrics.items():
                rows.append(
                    {"model": result.name, "origin": origin, "scorer": base, metric: values.get(metric)}
                )
    frame = pd.DataFrame(rows)
    metric_columns = [c for c in frame.columns if c not in ("model", "origin", "scorer")]
    return frame.melt(
        id_vars=["model", "origin", "scorer"], value_vars=metric_columns, var_name="metric"
    ).dropna(subset=["value"])


def summarize_rolling(table: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation, min and max over the origins, per model, scorer and metric."""
    grouped = table.groupby(["model", "metric", "scorer"], sort=False)["value"]
    return grouped.agg(origins="count", mean="mean", std="std", min="min", max="max").reset_index()


@writes_home
def backtest(
    settings: Settings, as_of: date, horizon_days: int, model_names: list[str], allow_leakage: bool = False
) -> dict[str, dict]:
    """Score the champions (and the baselines) as of `as_of` against what really happened after it.

    Refused for a champion trained on orders after `as_of` (it would be judged on what it learned
    from) unless `allow_leakage`; the entry then says `leakage`."""
    con = open_live_data(settings)
    needed = outcome_end(data_period(con).last_order, as_of, horizon_days)
    ensure_snapshots(settings, [as_of])
    feature_store.apply(settings)
    caps = capabilities(con)
    labels = labels_on_engine(settings, con, [as_of], horizon_days, needed, caps.products)
    registry.configure(settings)
    report = {}
    for name in model_names:
        bundle, info = registry.load_bundle(name)
        trained = trained_after(info.tags, as_of)
        if trained is not None and not allow_leakage:
            raise InputError(leakage_message(name, info.version, trained, as_of))
        frame = feature_store.training_frame(settings, labelled(labels, SPECS[name].label), name)
        report[name] = backtest_model(SPECS[name], bundle, info.version, frame, as_of, horizon_days)
        if trained is not None:
            report[name]["leakage"] = f"trained on orders up to {trained}: optimistic"
    return report


def labels_on_engine(
    settings: Settings,
    con: duckdb.DuckDBPyConnection,
    cutoffs: list[date],
    horizon_days: int,
    read_until: date,
    with_categories: bool,
    sample: CustomerSample | None = None,
) -> pd.DataFrame:
    """`training.labels.compute_labels` on the home's engine (`con`: the DuckDB one's live data)."""
    if settings.engine == "spark":
        from features.live_data import open_live_data_on_spark

        spark = open_live_data_on_spark(settings)
        return compute_labels_on_spark(spark, cutoffs, horizon_days, read_until, with_categories, sample)
    return compute_labels(con, cutoffs, horizon_days, read_until, with_categories, sample)


def training_sample(settings: Settings, keep_all: date | None = None) -> CustomerSample | None:
    """The run's customer sample (`Settings.train_sample`), keeping every customer of the cutoff
    `keep_all` if given; None when training on all customers."""
    if settings.train_sample is None:
        return None
    kept = () if keep_all is None else (keep_all,)
    return CustomerSample(settings.train_sample, settings.train_sample_seed, kept)


def sample_params(sample: CustomerSample | None) -> dict[str, object]:
    """How a run sampled its customers, as MLflow parameters (share 1: every customer)."""
    if sample is None:
        return {"train_sample": 1.0}
    return {"train_sample": sample.share, "train_sample_seed": sample.seed}


def ensure_snapshots(settings: Settings, cutoffs: list[date]) -> None:
    """Build the feature snapshots of `cutoffs` the home does not have yet (on the home's engine)."""
    missing = sorted(set(cutoffs) - set(settings.feature_snapshots.dates()))
    if missing:
        build_features.build(settings, missing)


def _fingerprint(con: duckdb.DuckDBPyConnection, *parts: object) -> str:
    """Hash of the import log and the run's window: the same data and settings give the same value."""
    imports = con.execute("SELECT import_id, rows_accepted FROM imports ORDER BY import_id").fetchall()
    return hashlib.sha256(repr((imports, parts)).encode()).hexdigest()[:16]
