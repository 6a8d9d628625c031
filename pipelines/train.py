"""`tierwise train` and `tierwise backtest`: labelled examples from Feast, fit, compare, register, promote."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

from features import feature_store
from features.data.duck import connect
from features.data.store import DataStore
from features.errors import InputError
from features.feature_repo import PROJECT
from features.settings import Settings
from features.snapshots import (
    build_snapshots,
    capabilities,
    check_cutoffs,
    data_period,
    existing_snapshots,
    register_canonical_views,
)
from training import evaluate, registry
from training.backtest_plan import VALID_SHARE, BacktestPlan, is_validation_customer, plan
from training.fit import TrainingData, fit_bundle
from training.labels import compute_labels, outcome_end
from training.model_card import model_card
from training.models import SPECS
from training.spec import ModelSpec
from training.tune import tune

MIN_CLASS_EXAMPLES = 20
IMPORTANCE_ROWS = 500  # SHAP values of a sample: the ranking is stable, the cost is linear in rows
Step = Callable[[str], None]


@dataclass
class TrainResult:
    name: str
    version: int
    promoted: bool
    reason: str
    test_metrics: dict[str, float]
    baseline_metrics: dict[str, dict[str, float]] = field(default_factory=dict)


def _connection(settings: Settings):
    con = connect(temp_directory=settings.data_dir / ".spill")
    register_canonical_views(con, DataStore(settings.data_dir).live_version())
    return con


def _ensure_snapshots(settings: Settings, con, cutoffs: list[date]) -> None:
    missing = sorted(set(cutoffs) - set(existing_snapshots(settings.snapshots_dir)))
    if missing:
        build_snapshots(
            con, check_cutoffs(missing, data_period(con)), settings.snapshots_dir, capabilities(con)
        )


def _fingerprint(con, *parts: object) -> str:
    """Hash of the import log and the run's window: the same data and settings give the same value."""
    imports = con.execute("SELECT import_id, rows_accepted FROM imports ORDER BY import_id").fetchall()
    return hashlib.sha256(repr((imports, parts)).encode()).hexdigest()[:16]


def _examples(settings: Settings, spec: ModelSpec, labels: pd.DataFrame) -> pd.DataFrame:
    """Labels with their point-in-time features (the label columns ride along through Feast)."""
    return feature_store.training_frame(settings, labels, spec.name)


def _data(
    spec: ModelSpec, frame: pd.DataFrame, names: list[str], strings: list[str], part: str
) -> TrainingData:
    if spec.is_classifier:
        positives = int(frame[spec.label].sum())
        negatives = len(frame) - positives
        if min(positives, negatives) < MIN_CLASS_EXAMPLES:
            raise InputError(
                f"{spec.name}: the {part} examples have {positives} positives and {negatives} negatives; "
                f"at least {MIN_CLASS_EXAMPLES} of each are needed (more customers or another --as-of)"
            )
    return TrainingData(frame, names, strings, spec.label)


def train(
    settings: Settings,
    model_names: list[str],
    as_of: date | None = None,
    horizon_days: int = 90,
    trials: int = 0,
    step_days: int = 7,
    on_step: Step | None = None,
) -> list[TrainResult]:
    """Train, evaluate, register and (if better) promote each model as of `as_of` (default: today's data)."""
    import mlflow

    step = on_step or (lambda _: None)
    con = _connection(settings)
    period = data_period(con)
    as_of = as_of or period.last_order.date() + timedelta(days=1)
    the_plan = plan(period.first_order.date(), as_of, horizon_days, step_days)
    step(f"feature snapshots for {len(the_plan.all_cutoffs)} cutoffs")
    _ensure_snapshots(settings, con, the_plan.all_cutoffs)
    feature_store.apply(settings)
    caps = capabilities(con)
    labels = compute_labels(con, the_plan.all_cutoffs, horizon_days, as_of, with_categories=caps.products)
    orders = con.execute(
        f"SELECT customer_id, ordered_at, amount FROM orders WHERE ordered_at < TIMESTAMPTZ '{the_plan.test}'"
    ).df()
    fingerprint = _fingerprint(con, as_of, horizon_days, step_days)
    registry.configure(settings)
    results = []
    for name in model_names:
        spec = SPECS[name]
        step(f"{name}: examples")
        parts = _parts(spec, _examples(settings, spec, labels), the_plan)  # the full frame is freed here
        with mlflow.start_run(run_name=f"{name} as of {as_of}", tags=_lineage_tags(spec)):
            results.append(_train_one(spec, parts, the_plan, trials, orders, fingerprint, step))
        del parts
    return results


def _parts(spec: ModelSpec, frame: pd.DataFrame, the_plan: BacktestPlan) -> dict[str, TrainingData]:
    """The examples split into the run's five parts, each copied once from `frame` by a row mask.

    Masks instead of intermediate frames per period: at a million customers every copy of the
    examples costs gigabytes.
    """
    from features.catalog import FEATURES_BY_NAME

    names = [c for c in frame.columns if c in FEATURES_BY_NAME]
    strings = [c for c in names if FEATURES_BY_NAME[c].dtype == "string"]
    days = frame["event_timestamp"].dt.date
    learn, refit = days.isin(set(the_plan.train)), days.isin(set(the_plan.deploy_train))
    held = is_validation_customer(frame["customer_id"])
    masks = {
        "train": (learn & ~held, "training"),
        "valid": (learn & held, "validation"),
        "test": (days == the_plan.test, "test"),
        "refit": (refit & ~held, "refit"),
        "refit_valid": (refit & held, "refit validation"),
    }
    return {
        part: _data(spec, frame[mask.to_numpy()].reset_index(drop=True), names, strings, label)
        for part, (mask, label) in masks.items()
    }


def _lineage_tags(spec: ModelSpec) -> dict[str, str]:
    """The tags Feast's MLflow integration reads (`feast.project`, `feast.feature_service`)."""
    return {"feast.project": PROJECT, "feast.feature_service": spec.name, "tierwise.model": spec.name}


def _train_one(
    spec: ModelSpec,
    parts: dict[str, TrainingData],
    the_plan: BacktestPlan,
    trials: int,
    orders: pd.DataFrame,
    fingerprint: str,
    step: Step,
) -> TrainResult:
    import mlflow

    names = parts["train"].feature_names
    horizon = the_plan.horizon_days
    mlflow.log_params(
        {
            "as_of": the_plan.as_of,
            "horizon_days": horizon,
            "train_cutoffs": len(the_plan.train),
            "first_train_cutoff": the_plan.train[0],
            "last_train_cutoff": the_plan.train[-1],
            "valid_customers_share": VALID_SHARE,
            "test_cutoff": the_plan.test,
            "deploy_cutoffs": len(the_plan.deploy_train),
            "feature_service": spec.name,
            "objective": spec.objective,
            "data_fingerprint": fingerprint,
            "trials": trials,
            **{f"examples_{k}": len(v.frame) for k, v in parts.items()},
        }
    )
    mlflow.log_text("\n".join(names), "features.txt")
    step(f"{spec.name}: tuning ({trials} trials)")
    best = tune(spec, parts["train"], parts["valid"], horizon, trials)
    step(f"{spec.name}: fit and test")
    evaluated, trees = fit_bundle(spec, parts["train"], parts["valid"], horizon, best)
    test = parts["test"]
    prediction = evaluated.predict(test.frame)
    test_metrics = evaluate.score(spec, test.y, prediction)
    baselines = spec.baselines(test.frame, orders, the_plan.test, horizon)
    baseline_metrics = {k: evaluate.rank_score(spec, test.y, v) for k, v in baselines.items()}
    mlflow.log_metrics({f"test_{k}": v for k, v in test_metrics.items() if np.isfinite(v)})
    for base, values in baseline_metrics.items():
        mlflow.log_metrics({f"baseline_{base}_{k}": v for k, v in values.items() if np.isfinite(v)})
    importance = _log_charts(spec, evaluated, test, prediction, baselines)

    step(f"{spec.name}: refit for deployment")
    deployed, _ = fit_bundle(spec, parts["refit"], parts["refit_valid"], horizon, best)
    uri = registry.log_bundle(deployed, test.frame.head(20))
    primary = test_metrics[spec.primary_metric]
    tags = {
        "as_of": str(the_plan.as_of),
        "horizon_days": str(horizon),
        "test_cutoff": str(the_plan.test),
        "test_metric": f"{primary:.6f}",
        "primary_metric": spec.primary_metric,
        "feast.feature_service": spec.name,
        "data_fingerprint": fingerprint,
    }
    version = registry.register(spec.name, uri, tags)
    promoted, reason = _promotion(spec, primary, the_plan.test, test)
    if promoted:
        registry.promote(spec.name, version)
    mlflow.set_tags({"registered_version": version, "promoted": promoted, "promotion_reason": reason})
    top = importance["feature"].head(8).tolist()
    examples = {k: len(v.frame) for k, v in parts.items()}
    mlflow.log_text(
        model_card(spec, the_plan, examples, test_metrics, baseline_metrics, top, fingerprint),
        "model_card.md",
    )
    mlflow.log_metric("trees", trees)
    return TrainResult(spec.name, version, promoted, reason, test_metrics, baseline_metrics)


def _promotion(spec: ModelSpec, candidate: float, test_cutoff: date, test: TrainingData) -> tuple[bool, str]:
    """Champion only if better on the same test cutoff by the primary metric.

    A champion tested on the same cutoff is compared by its recorded test metric (same recipe, fair).
    A champion tested elsewhere is scored on this test cutoff; it may have trained on this period, so
    the comparison errs towards keeping it.
    """
    current = registry.champion(spec.name)
    if current is None:
        return True, "no champion yet"
    if current.tags.get("test_cutoff") == str(test_cutoff) and "test_metric" in current.tags:
        incumbent = float(current.tags["test_metric"])
    else:
        bundle, _ = registry.load_bundle(spec.name)
        incumbent = evaluate.score(spec, test.y, bundle.predict(test.frame))[spec.primary_metric]
    metric = spec.primary_metric
    if candidate > incumbent:
        return True, f"{metric} {candidate:.4f} beats champion v{current.version} ({incumbent:.4f})"
    return False, f"{metric} {candidate:.4f} does not beat champion v{current.version} ({incumbent:.4f})"


def _log_charts(
    spec: ModelSpec, bundle, test: TrainingData, prediction: np.ndarray, baselines: dict[str, np.ndarray]
) -> pd.DataFrame:
    """Gain, calibration or decile, and importance charts as run artifacts; returns the importance table."""
    import matplotlib.pyplot as plt
    import mlflow

    charts = {
        "gain_chart.png": evaluate.gain_chart(
            test.y, {"model": prediction, **baselines}, f"{spec.name}: gain"
        )
    }
    if spec.is_classifier:
        charts["calibration.png"] = evaluate.calibration_chart(
            test.y, prediction, f"{spec.name}: calibration"
        )
    else:
        charts["deciles.png"] = evaluate.decile_chart(test.y, prediction, f"{spec.name}: deciles")
    sample = test.frame.sample(min(len(test.frame), IMPORTANCE_ROWS), random_state=0)
    table = evaluate.importance(bundle.feature_names, bundle.contributions(bundle.matrix(sample)))
    charts["feature_importance.png"] = evaluate.importance_chart(table, f"{spec.name}: feature importance")
    for file_name, figure in charts.items():
        mlflow.log_figure(figure, file_name)
        plt.close(figure)
    mlflow.log_table(table, "feature_importance.json")
    return table


def _primary_interval(spec: ModelSpec, y: np.ndarray, prediction: np.ndarray) -> tuple[float, float]:
    """95% bootstrap interval of the primary metric: with few churners differences inside it are noise."""
    from training import metrics

    metric = {
        "roc_auc": lambda t, p: metrics.classification_metrics(t, p)["roc_auc"],
        "normalized_gini": metrics.normalized_gini,
    }[spec.primary_metric]
    return metrics.bootstrap_interval(metric, y, prediction, n_boot=200, seed=0)


def backtest(settings: Settings, as_of: date, horizon_days: int, model_names: list[str]) -> dict[str, dict]:
    """Score the champions (and the baselines) as of `as_of` against what really happened after it."""
    import mlflow

    con = _connection(settings)
    needed = outcome_end(data_period(con).last_order, as_of, horizon_days)
    _ensure_snapshots(settings, con, [as_of])
    feature_store.apply(settings)
    caps = capabilities(con)
    labels = compute_labels(con, [as_of], horizon_days, needed, with_categories=caps.products)
    orders = con.execute(
        f"SELECT customer_id, ordered_at, amount FROM orders WHERE ordered_at < TIMESTAMPTZ '{as_of}'"
    ).df()
    registry.configure(settings)
    report = {}
    for name in model_names:
        spec = SPECS[name]
        bundle, info = registry.load_bundle(name)
        frame = _examples(settings, spec, labels)
        y = frame[spec.label].to_numpy(dtype=float)
        with mlflow.start_run(run_name=f"backtest {name} as of {as_of}", tags=_lineage_tags(spec)):
            prediction = bundle.predict(frame)
            model_metrics = evaluate.score(spec, y, prediction)
            low, high = _primary_interval(spec, y, prediction)
            (
                model_metrics[f"{spec.primary_metric}_ci_low"],
                model_metrics[f"{spec.primary_metric}_ci_high"],
            ) = low, high
            baselines = spec.baselines(frame, orders, as_of, horizon_days)
            baseline_metrics = {k: evaluate.rank_score(spec, y, v) for k, v in baselines.items()}
            mlflow.log_params(
                {
                    "as_of": as_of,
                    "horizon_days": horizon_days,
                    "model_version": info.version,
                    "customers": len(frame),
                    "backtest": True,
                }
            )
            mlflow.log_metrics({f"backtest_{k}": v for k, v in model_metrics.items() if np.isfinite(v)})
            for base, values in baseline_metrics.items():
                mlflow.log_metrics({f"baseline_{base}_{k}": v for k, v in values.items() if np.isfinite(v)})
            _log_charts(
                spec, bundle, TrainingData(frame, bundle.feature_names, [], spec.label), prediction, baselines
            )
        report[name] = {
            "version": info.version,
            "model": model_metrics,
            "baselines": baseline_metrics,
            "customers": len(frame),
            "positives": float(y.sum()) if spec.is_classifier else None,
        }
    return report
