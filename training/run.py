"""One training run of one model: split the examples, tune, fit, test against the baselines, register,
promote if it wins, and explain the result in MLflow; and the backtest of a champion.

The pipelines (`pipelines/train.py`) bring the data — labelled examples from Feast and the run's
plan — and call `train_model` or `backtest_model` per model. Everything a
run records goes through `training.registry`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from features.catalog import FEATURES_BY_NAME
from features.errors import InputError
from features.feature_repo import PROJECT
from training import evaluate, metrics, registry
from training.backtest_plan import VALID_SHARE, BacktestPlan, is_validation_customer
from training.bundle import ModelBundle
from training.fallback import fit_fallback
from training.fit import TrainingData, fit_bundle
from training.intervals import ValueInterval, coverage_report, fit_interval
from training.labels import CustomerSample
from training.level_anchor import ANCHOR_FEATURE, LevelChoice, level_factor
from training.model_card import model_card
from training.promotion import decide_promotion
from training.spec import ModelSpec
from training.tune import tune

MIN_CLASS_EXAMPLES = 20
IMPORTANCE_ROWS = 500  # SHAP values of a sample: the ranking is stable, the cost is linear in rows
#: Test-cutoff rows kept with a model for monitoring (features, label, the model's prediction). With
#: 20,000 rows a distribution's quantiles are known to about ±0.7 percentile points (binomial standard
#: error at the median, sqrt(0.25 / n)), far below the shifts drift tests are set to flag.
REFERENCE_ROWS = 20_000
#: Where the reference sample and the importance ranking are logged in the training run.
REFERENCE_ARTIFACT = "reference/sample.parquet"
IMPORTANCE_ARTIFACT = "reference/importance.parquet"
Step = Callable[[str], None]
#: A run's parts of the examples, and how messages name them.
PARTS = {
    "train": "training",
    "valid": "validation",
    "test": "test",
    "refit": "refit",
    "refit_valid": "refit validation",
}
#: The parts tuning, fitting and testing read; the deployed refit's parts are read after them.
TEST_PARTS = ("train", "valid", "test")
REFIT_PARTS = ("refit", "refit_valid")


@dataclass
class TrainResult:
    name: str
    version: int
    promoted: bool
    reason: str
    test_metrics: dict[str, float]
    baseline_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    #: The test cutoff's `customer_id`, label and the tested model's `prediction`: runs on the same
    #: data compare on the same rows (`benchmarks/bench_train.py` measures what sampling costs).
    test_predictions: pd.DataFrame | None = field(default=None, repr=False)


def lineage_tags(spec: ModelSpec) -> dict[str, str]:
    """The tags Feast's MLflow integration reads (`feast.project`, `feast.feature_service`)."""
    return {"feast.project": PROJECT, "feast.feature_service": spec.name, "tierwise.model": spec.name}


def part_cutoffs(the_plan: BacktestPlan, parts: Iterable[str]) -> list[date]:
    """The cutoffs whose examples fall in `parts` (names of `PARTS`)."""
    wanted = set(parts)
    days = {the_plan.test} if "test" in wanted else set()
    if wanted & {"train", "valid"}:
        days |= set(the_plan.train)
    if wanted & {"refit", "refit_valid"}:
        days |= set(the_plan.deploy_train)
    return sorted(days)


def split_examples(
    spec: ModelSpec,
    frames: Iterable[pd.DataFrame],
    the_plan: BacktestPlan,
    parts: Iterable[str] = tuple(PARTS),
    sample: CustomerSample | None = None,
) -> dict[str, TrainingData]:
    """The examples split into the run's parts (default: all five), each row copied once into its part.

    Args:
        spec: The model.
        frames: The labelled examples (`features.feature_store.training_frame` columns), in pieces
            (one per cutoff, as `training_frames` reads them) or one frame in a list. Each piece is
            split as it comes and let go, so memory holds the parts and one piece, not the whole
            set twice (at a million customers every copy of the examples costs gigabytes). The
            parts keep the rows in the order they came.
        the_plan: The run's cutoffs.
        parts: Which parts to make (names of `PARTS`); rows of the others are let go.
        sample: The run's customer sample: at its `keep_all` cutoffs (labels kept every customer
            there for the test) the parts a model learns from keep only its customers.

    Rows without a label (growth for customers not active before the cutoff) are in no part.

    Raises:
        InputError: a classifier's part has fewer than `MIN_CLASS_EXAMPLES` of either class.
    """
    train, refit = set(the_plan.train), set(the_plan.deploy_train)
    # Pieces are kept column by column: each column of a part is joined and its pieces let go
    # before the next, so joining needs one column's memory, not a second copy of the part.
    pieces: dict[str, dict[str, list]] = {part: {} for part in parts}
    empty: pd.DataFrame | None = None
    for frame in frames:
        if empty is None:
            empty = frame.iloc[:0]
        days = frame["event_timestamp"].dt.date
        known = frame[spec.label].notna()  # growth: only customers active before the cutoff
        learn, again = days.isin(train) & known, days.isin(refit) & known
        if sample is not None and sample.keep_all:
            outside = days.isin(sample.keep_all).to_numpy() & ~sample.contains(frame["customer_id"])
            learn, again = learn & ~outside, again & ~outside
        held = is_validation_customer(frame["customer_id"])
        masks = {
            "train": learn & ~held,
            "valid": learn & held,
            "test": (days == the_plan.test) & known,
            "refit": again & ~held,
            "refit_valid": again & held,
        }
        for part, mask in masks.items():
            if part in pieces and mask.any():
                rows = mask.to_numpy()
                for column in frame.columns:
                    # The array, not a Series: a Series' index would cost 8 bytes a row per column.
                    pieces[part].setdefault(column, []).append(frame[column].array[rows])
        del frame, masks
    if empty is None:
        raise InputError(f"{spec.name}: no examples to learn from")
    names = [c for c in empty.columns if c in FEATURES_BY_NAME]
    strings = [c for c in names if FEATURES_BY_NAME[c].dtype == "string"]
    made = {}
    for part in list(pieces):
        columns = pieces.pop(part)
        if not columns:
            joined = empty.reset_index(drop=True)
        else:
            # copy=False: the joined columns become the frame as they are (pandas would copy them
            # into one block per dtype otherwise).
            joined = pd.DataFrame({c: _joined(columns.pop(c)) for c in empty.columns}, copy=False)
        made[part] = _checked(spec, joined, names, strings, PARTS[part])
    return made


def _joined(arrays: list) -> pd.Series:
    """The pieces of one column (pandas arrays) as one Series with a fresh index."""
    return pd.concat([pd.Series(a, copy=False) for a in arrays], ignore_index=True)


def _checked(
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


def train_model(
    spec: ModelSpec,
    parts: dict[str, TrainingData],
    the_plan: BacktestPlan,
    trials: int,
    fingerprint: str,
    step: Step,
    register: bool = True,
    refit_parts: Callable[[], dict[str, TrainingData]] | None = None,
    level_anchor: str = "auto",
) -> TrainResult:
    """Tune on train → validation, test once beside the baselines, refit on every cutoff up to the
    test cutoff, register the refit and promote it if it beats the champion. Call inside a run.

    With `register=False` it stops after the test (a rolling-origin backtest: only the figures count).
    With `refit_parts`, `parts` needs only `TEST_PARTS`: once tested, the training and validation
    parts are dropped from `parts` and `refit_parts()` reads the refit's, so memory never holds both
    (at a million customers each is gigabytes). `level_anchor` (one of `LEVEL_ANCHOR_MODES`) says
    whether an anchored model keeps its anchor (`LevelChoice`)."""
    names = parts["train"].feature_names
    horizon = the_plan.horizon_days
    registry.log_params(
        {
            "as_of": the_plan.as_of,
            "horizon_days": horizon,
            "step_days": the_plan.step_days,
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
    examples = {k: len(v.frame) for k, v in parts.items()}
    registry.log_text("\n".join(names), "features.txt")
    step(f"{spec.name}: tuning ({trials} trials)")
    best = tune(
        spec,
        parts["train"],
        parts["valid"],
        horizon,
        trials,
        on_trial=lambda done, total: step(f"{spec.name}: tuning, trial {done}/{total}"),
    )
    step(f"{spec.name}: fit and test")
    evaluated, trees = fit_bundle(spec, parts["train"], parts["valid"], horizon, best)
    test = parts["test"]
    prediction = evaluated.predict(test.frame)
    level = _level_choice(evaluated, prediction, test, level_anchor)
    factor = level.factor if level is not None and level.kept else 1.0
    prediction = prediction * factor
    test_metrics = evaluate.score(spec, test.y, prediction)
    predictions = pd.DataFrame(
        {"customer_id": test.frame["customer_id"], spec.label: test.y, "prediction": prediction}
    )
    baselines = spec.baselines(test.frame, horizon)
    baseline_metrics = {k: evaluate.rank_score(spec, test.y, v) for k, v in baselines.items()}
    registry.log_metrics({f"test_{k}": v for k, v in test_metrics.items()})
    for base, values in baseline_metrics.items():
        registry.log_metrics({f"baseline_{base}_{k}": v for k, v in values.items()})
    importance = log_charts(spec, evaluated, test, prediction, baselines)

    if not spec.is_classifier:
        step(f"{spec.name}: 80% interval")
        test_metrics |= _interval_on_test(evaluated, parts, prediction, factor)
    if not register:
        return TrainResult(
            spec.name,
            0,
            False,
            "evaluated only (not registered)",
            test_metrics,
            baseline_metrics,
            predictions,
        )
    step(f"{spec.name}: refit for deployment")
    if refit_parts is not None:
        del parts["train"], parts["valid"]
        parts.update(refit_parts())
        examples |= {k: len(parts[k].frame) for k in REFIT_PARTS}
        registry.log_params({f"examples_{k}": examples[k] for k in REFIT_PARTS})
    deployed, _ = fit_bundle(spec, parts["refit"], parts["refit_valid"], horizon, best)
    if not spec.is_classifier:
        deployed.interval = _interval(deployed, parts["refit"], parts["refit_valid"])
    if level is not None and not level.kept:
        deployed.level_anchor = None  # the raw level was nearer the truth on the test cutoff
    if deployed.level_anchor is not None:
        registry.log_params({"deployed_level_anchor": deployed.level_anchor})
    uri = registry.log_bundle(deployed, test.frame.head(20))
    registry.log_frame(reference_sample(spec, deployed, test), REFERENCE_ARTIFACT)
    registry.log_frame(importance, IMPORTANCE_ARTIFACT)
    primary = test_metrics[spec.primary_metric]
    tags = {
        "as_of": str(the_plan.as_of),
        "horizon_days": str(horizon),
        "step_days": str(the_plan.step_days),  # a retrain repeats the champion's recipe
        "test_cutoff": str(the_plan.test),
        "test_metric": repr(float(primary)),  # full precision: the promotion rule compares with it
        "primary_metric": spec.primary_metric,
        "feast.feature_service": spec.name,
        "data_fingerprint": fingerprint,
    }
    fallback = fit_fallback(spec.name, test.frame, horizon)  # what answers while there is no champion
    if fallback is not None:
        registry.log_fallback(fallback)
        tags[registry.FALLBACK_TAG] = fallback.baseline
    top = importance["feature"].head(8).tolist()
    card = model_card(
        spec,
        the_plan,
        examples,
        test_metrics,
        baseline_metrics,
        top,
        fingerprint,
        level,
        deployed.level_anchor,
    )
    registry.log_text(card, "model_card.md")
    registry.describe_run(card)
    version = registry.register(spec.name, uri, tags, description=card)
    registry.describe_model(spec.name, model_description(spec, horizon))
    promoted, reason = decide_promotion(spec, primary, the_plan.test, test, baseline_metrics)
    if promoted:
        registry.promote(spec.name, version)
    registry.set_tags({"registered_version": version, "promoted": promoted, "promotion_reason": reason})
    registry.log_metrics({"trees": trees})
    return TrainResult(spec.name, version, promoted, reason, test_metrics, baseline_metrics, predictions)


def model_description(spec: ModelSpec, horizon_days: int) -> str:
    """What a registered model is, for whoever opens the registry (each version's card says how good)."""
    entry = spec.model
    kind = "a calibrated probability" if entry.task == "classification" else "an amount"
    return (
        f"Predicts {entry.wording} over the next {horizon_days} days for each customer ({kind}, "
        f"answered as `{entry.output}` by the API and the tier snapshots). LightGBM on the Feast feature "
        f"service `{spec.name}`; a version becomes `champion` only if its {entry.primary_metric} on the "
        "newest matured cutoff beats the champion's and the best baseline's. Each version's description "
        "is its model card."
    )


def _level_choice(bundle: ModelBundle, raw: np.ndarray, test: TrainingData, mode: str) -> LevelChoice | None:
    """Whether an anchored model keeps its anchor, decided on the test cutoff (`LevelChoice`) and
    logged; None for a model without one. Training's test cutoff is out of time for the evaluated
    model and the newest matured cutoff for the deployed one, so the test figures are of the level
    chosen there (the ranking, and so the promotion metric, do not depend on it)."""
    if bundle.level_anchor is None:
        return None
    level = LevelChoice.on(bundle.level_anchor, raw, test.frame[ANCHOR_FEATURE], test.y, mode)
    registry.log_params(
        {"level_anchor": level.anchor, "level_anchor_mode": mode, "level_anchor_kept": level.kept}
    )
    registry.log_metrics(
        {
            "test_level_factor": level.factor,
            "test_total_ratio_raw": level.raw_ratio,
            "test_total_ratio_anchored": level.anchored_ratio,
        }
    )
    return level


def anchored_predictions(bundle: ModelBundle, frame: pd.DataFrame) -> tuple[np.ndarray, float]:
    """The bundle's predictions for a whole population (every customer of one cutoff), times its
    level factor over them (`training.level_anchor`; 1 for a model without an anchor), and the factor."""
    raw = bundle.predict(frame)
    if bundle.level_anchor is None:
        return raw, 1.0
    factor = level_factor(bundle.level_anchor, raw, frame[ANCHOR_FEATURE])
    return raw * factor, factor


def reference_sample(spec: ModelSpec, bundle: ModelBundle, test: TrainingData, seed: int = 0) -> pd.DataFrame:
    """What a model is monitored against: a seeded sample of its test-cutoff examples (at most
    `REFERENCE_ROWS`), with their features, the label and the model's own prediction (anchored over
    the whole test cutoff, as scoring anchors it). No customer ids: drift and quality need the
    distributions, not who the customers were."""
    prediction, _ = anchored_predictions(bundle, test.frame)
    frame, picked = test.frame, slice(None)
    if len(frame) > REFERENCE_ROWS:
        frame = frame.sample(REFERENCE_ROWS, random_state=seed)
        picked = test.frame.index.get_indexer(frame.index)
    sample = frame[[*bundle.feature_names, spec.label]].reset_index(drop=True)
    sample["prediction"] = prediction[picked]
    return sample


def log_charts(
    spec: ModelSpec,
    bundle: ModelBundle,
    test: TrainingData,
    prediction: np.ndarray,
    baselines: dict[str, np.ndarray],
) -> pd.DataFrame:
    """Gain, calibration or decile, and importance charts as run artifacts; returns the importance table."""
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
    registry.log_figures(charts)
    registry.log_table(table, "feature_importance.json")
    return table


def primary_interval(spec: ModelSpec, y: np.ndarray, prediction: np.ndarray) -> tuple[float, float]:
    """95% bootstrap interval of the primary metric: with few churners differences inside it are noise."""
    metric = {
        "roc_auc": lambda t, p: metrics.classification_metrics(t, p)["roc_auc"],
        "normalized_gini": metrics.normalized_gini,
    }[spec.primary_metric]
    return metrics.bootstrap_interval(metric, y, prediction, n_boot=200, seed=0)


def _interval(bundle: ModelBundle, train: TrainingData, calibration: TrainingData) -> ValueInterval:
    return fit_interval(
        bundle.matrix(train.frame),
        train.y,
        bundle.matrix(calibration.frame),
        calibration.y,
        bundle.feature_names,
    )


def _interval_on_test(
    bundle: ModelBundle, parts: dict[str, TrainingData], prediction: np.ndarray, factor: float
) -> dict:
    """Fit the interval on train (calibrated on valid) and measure its coverage on the test cutoff,
    scaled by the level factor of the test cutoff's prediction (as scoring scales it)."""
    interval = _interval(bundle, parts["train"], parts["valid"])
    low, high = interval.predict(bundle.matrix(parts["test"].frame), factor)
    report = coverage_report(parts["test"].y, low, high, prediction)
    registry.log_text(
        "\n".join(f"{d + 1}: {c:.3f}" for d, c in enumerate(report["coverage_by_decile"])),
        "interval_coverage_by_decile.txt",
    )
    measured = {"interval_coverage": report["coverage"], "interval_mean_width": report["mean_width"]}
    registry.log_metrics({f"test_{k}": v for k, v in measured.items()})
    return measured


def trained_after(tags: dict[str, str], as_of: date) -> date | None:
    """The date a registered version's training data ends, when that is after `as_of`: a backtest at
    `as_of` would score it on orders it learned from (its figures are optimistic), else None."""
    trained = tags.get("as_of")
    if trained is None or date.fromisoformat(trained) <= as_of:
        return None
    return date.fromisoformat(trained)


def leakage_message(name: str, version: int, trained: date, as_of: date) -> str:
    return (
        f"{name} v{version} was trained on orders up to {trained}, after --as-of {as_of}: scored there it "
        f"is judged on what it learned from, so its figures are optimistic. Backtest a version trained "
        f"as of {as_of} or earlier (`tierwise train --as-of {as_of}`), or pass --allow-leakage to see "
        "the optimistic figures marked as such"
    )


def backtest_model(
    spec: ModelSpec,
    bundle: ModelBundle,
    version: int,
    frame: pd.DataFrame,
    as_of: date,
    horizon_days: int,
) -> dict:
    """Score a champion and the baselines on labelled examples at `as_of`; log it all in a run."""
    y = frame[spec.label].to_numpy(dtype=float)
    with registry.run(f"backtest {spec.name} as of {as_of}", lineage_tags(spec)):
        prediction, factor = anchored_predictions(bundle, frame)
        model_metrics = evaluate.score(spec, y, prediction)
        low, high = primary_interval(spec, y, prediction)
        model_metrics[f"{spec.primary_metric}_ci_low"], model_metrics[f"{spec.primary_metric}_ci_high"] = (
            low,
            high,
        )
        baselines = spec.baselines(frame, horizon_days)
        baseline_metrics = {k: evaluate.rank_score(spec, y, v) for k, v in baselines.items()}
        registry.log_params(
            {
                "as_of": as_of,
                "horizon_days": horizon_days,
                "model_version": version,
                "customers": len(frame),
                "backtest": True,
            }
        )
        if bundle.level_anchor is not None:
            registry.log_params({"level_anchor": bundle.level_anchor})
            registry.log_metrics({"backtest_level_factor": factor})
        registry.log_metrics({f"backtest_{k}": v for k, v in model_metrics.items()})
        for base, values in baseline_metrics.items():
            registry.log_metrics({f"baseline_{base}_{k}": v for k, v in values.items()})
        log_charts(
            spec, bundle, TrainingData(frame, bundle.feature_names, [], spec.label), prediction, baselines
        )
    return {
        "version": version,
        "model": model_metrics,
        "baselines": baseline_metrics,
        "customers": len(frame),
        "positives": float(y.sum()) if spec.is_classifier else None,
    }
