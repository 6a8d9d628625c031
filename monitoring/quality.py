"""What the models were really worth: predictions of a past tier snapshot against what then happened.

Once a snapshot's horizon has ended, its customers' outcomes are known (`training.labels`), so the
predictions stored in the snapshot can be scored as the test cutoff was at training: the same
metrics, the same baselines on the same rows. Each model then gets a plain grade.

The grade rule, from the lift of the model's primary metric (ROC-AUC for churn and growth,
normalized Gini for value) over the best baseline on the same customers:

| grade | lift over the best baseline |
|---|---|
| Excellent | ≥ +0.03 |
| Good | ≥ +0.01 |
| Fair | ≥ −0.01 (on a par: within the noise of a few thousand customers) |
| Poor | < −0.01 (a baseline ranks customers better: retrain, or fall back to it) |

A model whose metric fell more than `Thresholds.quality_drop` below its training test metric is
graded Fair at best, whatever its lift. Fewer than `Thresholds.min_labelled` labelled customers (or
at least `MIN_CLASS` of each outcome, for classifiers) give no grade ("Too few labels").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from monitoring.thresholds import Thresholds
from training import evaluate
from training.spec import ModelSpec

#: (grade, smallest lift over the best baseline), best first; below the last: Poor.
GRADES: tuple[tuple[str, float], ...] = (("Excellent", 0.03), ("Good", 0.01), ("Fair", -0.01))
TOO_FEW = "Too few labels"
#: A classifier also needs this many customers of each outcome: an AUC over 5 churners is noise.
MIN_CLASS = 20


@dataclass(frozen=True)
class Quality:
    """One model's real quality on one matured snapshot.

    Attributes:
        metrics: The model's metrics (`training.evaluate.score`) on the snapshot's customers.
        baselines: Each baseline's metrics on the same customers.
        training_metric: The primary metric recorded on the test cutoff at training (None if unknown).
        lift: Primary metric minus the best baseline's.
        drop: Training metric minus today's (positive = worse than promised), or None.
        grade: Excellent, Good, Fair, Poor or "Too few labels".
    """

    model: str
    as_of: date
    horizon_days: int
    customers: int
    positives: int | None
    metrics: dict[str, float]
    baselines: dict[str, dict[str, float]]
    primary_metric: str
    training_metric: float | None
    best_baseline: str | None
    lift: float
    drop: float | None
    grade: str

    @property
    def primary(self) -> float:
        return self.metrics[self.primary_metric]

    def summary(self) -> dict[str, Any]:
        return {**self.__dict__, "as_of": self.as_of.isoformat(), "primary": self.primary}


def grade(lift: float, drop: float | None, thresholds: Thresholds) -> str:
    """The grade of a model from its lift over the best baseline and its drop since training."""
    if not np.isfinite(lift):
        return TOO_FEW
    chosen = next((name for name, floor in GRADES if lift >= floor), "Poor")
    dropped = drop is not None and drop > thresholds.quality_drop
    if dropped and chosen in ("Excellent", "Good"):
        return "Fair"
    return chosen


def matured_quality(
    spec: ModelSpec,
    as_of: date,
    horizon_days: int,
    outcome: np.ndarray,
    prediction: np.ndarray,
    baselines: dict[str, np.ndarray],
    training_metric: float | None,
    thresholds: Thresholds,
) -> Quality:
    """Score one model's stored predictions against the outcomes, beside the baselines.

    Args:
        outcome: The label per customer (`spec.label`: churned 0/1, spend, grew 0/1).
        prediction: What the snapshot predicted for the same customers, in the same order.
        baselines: Each baseline's score for the same customers (higher = more of the label).
    """
    y = np.asarray(outcome, dtype=float)
    p = np.asarray(prediction, dtype=float)
    positives = int(y.sum()) if spec.is_classifier else None
    enough = len(y) >= thresholds.min_labelled and (
        positives is None or min(positives, len(y) - positives) >= MIN_CLASS
    )
    model_metrics = evaluate.score(spec, y, p)
    baseline_metrics = {name: evaluate.rank_score(spec, y, values) for name, values in baselines.items()}
    metric = spec.primary_metric
    best = max(baseline_metrics, key=lambda n: _finite(baseline_metrics[n][metric]), default=None)
    lift = model_metrics[metric] - baseline_metrics[best][metric] if best else model_metrics[metric]
    drop = None if training_metric is None else training_metric - model_metrics[metric]
    return Quality(
        model=spec.name,
        as_of=as_of,
        horizon_days=horizon_days,
        customers=len(y),
        positives=positives,
        metrics=model_metrics,
        baselines=baseline_metrics,
        primary_metric=metric,
        training_metric=training_metric,
        best_baseline=best,
        lift=float(lift),
        drop=None if drop is None else float(drop),
        grade=grade(float(lift), drop, thresholds) if enough else TOO_FEW,
    )


def _finite(value: float) -> float:
    return value if np.isfinite(value) else -np.inf
