"""One model's health on one date, and the alerts it raises: drift, prediction shift, quality.

`ModelHealth` gathers what monitoring measured for a champion — feature drift and prediction drift
against its training reference, and the real quality of every matured snapshot — and `alerts`
turns it into records shaped like the tier alerts (`rule`, `severity`, `message`, `as_of`, plus the
model, the reason and the recommended action), so one scheduler branch handles both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from monitoring.drift import ColumnDrift, DriftResult
from monitoring.quality import TOO_FEW, Quality
from monitoring.thresholds import Thresholds

RETRAIN = "retrain"
INVESTIGATE = "investigate data"


@dataclass
class ModelHealth:
    """What monitoring found for one champion on one date.

    Attributes:
        features: Drift of the model's features against its training reference.
        prediction: Drift of its prediction column against its own test-cutoff predictions.
        prediction_mean, reference_mean: Mean prediction today and in the reference.
        top_features: The model's most important features (training-time ranking), best first.
        quality: Real quality of each matured snapshot, oldest first.
    """

    model: str
    version: int
    run_id: str
    as_of: date
    features: DriftResult
    prediction: ColumnDrift | None
    prediction_mean: float
    reference_mean: float
    top_features: list[str]
    quality: list[Quality] = field(default_factory=list)

    @property
    def mean_shift(self) -> float:
        """Relative change of the mean prediction against the reference (0.1 = 10% higher)."""
        if self.reference_mean == 0:
            return 0.0
        return (self.prediction_mean - self.reference_mean) / abs(self.reference_mean)

    @property
    def latest_quality(self) -> Quality | None:
        graded = [q for q in self.quality if q.grade != TOO_FEW]
        return graded[-1] if graded else (self.quality[-1] if self.quality else None)

    @property
    def grade(self) -> str:
        latest = self.latest_quality
        return latest.grade if latest is not None else "Not yet measured"

    def top_drifted(self, thresholds: Thresholds) -> list[str]:
        top = set(self.top_features[: thresholds.top_features])
        return [column for column in self.features.drifted if column in top]

    def summary(self, thresholds: Thresholds) -> dict[str, Any]:
        """Everything measured, JSON-ready (the monitoring JSON and the MLflow summary read this)."""
        return {
            "model": self.model,
            "version": self.version,
            "run_id": self.run_id,
            "as_of": self.as_of.isoformat(),
            "grade": self.grade,
            "feature_drift": self.features.summary(),
            "top_features": self.top_features[: thresholds.top_features],
            "top_features_drifted": self.top_drifted(thresholds),
            "prediction_drift": None if self.prediction is None else self.prediction.__dict__,
            "prediction_mean": self.prediction_mean,
            "reference_mean": self.reference_mean,
            "prediction_mean_shift": self.mean_shift,
            "quality": [q.summary() for q in self.quality],
            "alerts": alerts(self, thresholds),
        }


def alerts(health: ModelHealth, thresholds: Thresholds) -> list[dict[str, Any]]:
    """The alert records `health` raises under `thresholds` (empty when all is well)."""
    found: list[dict[str, Any]] = []
    model = health.model

    def alert(rule: str, severity: str, message: str, action: str, **details: Any) -> None:
        found.append(
            {
                "rule": rule,
                "severity": severity,
                "model": model,
                "message": message,
                "action": action,
                "as_of": health.as_of.isoformat(),
                **details,
            }
        )

    drift = health.features
    top = health.top_drifted(thresholds)
    if drift.columns and (drift.share >= thresholds.drifted_share or top):
        worst = ", ".join(c.column for c in drift.worst(3) if c.drifted)
        alert(
            "feature_drift",
            "warning",
            f"{model}: {len(drift.drifted)} of {len(drift.columns)} features drifted ({drift.share:.0%}; "
            f"threshold {thresholds.drifted_share:.0%})"
            + (f", among them top features {', '.join(top)}" if top else "")
            + f"; worst: {worst}",
            f"{INVESTIGATE}: check the import for a broken source, then {RETRAIN} {model} on the newest data",
            drifted_share=drift.share,
            drifted=drift.drifted,
        )
    shifted = abs(health.mean_shift) > thresholds.prediction_shift
    if (health.prediction is not None and health.prediction.drifted) or shifted:
        alert(
            "prediction_drift",
            "warning",
            f"{model}: predictions drifted from the champion's test-cutoff predictions (mean "
            f"{health.prediction_mean:.4g} against {health.reference_mean:.4g}, {health.mean_shift:+.0%})",
            f"{RETRAIN} {model}: `tierwise train --model {model}` (or `tierwise run --retrain-on-alert`)",
            mean_shift=health.mean_shift,
        )
    latest = health.latest_quality
    if latest is not None and latest.grade != TOO_FEW:
        if latest.drop is not None and latest.drop > thresholds.quality_drop:
            alert(
                "quality_drop",
                "critical",
                f"{model}: {latest.primary_metric} {latest.primary:.3f} on the {latest.as_of} snapshot, "
                f"{latest.drop:.3f} below the {latest.training_metric:.3f} measured at training",
                f"{RETRAIN} {model} on the newest data",
                snapshot=latest.as_of.isoformat(),
            )
        if latest.grade == "Poor":
            alert(
                "below_baseline",
                "critical",
                f"{model}: the {latest.best_baseline} baseline ranks customers better "
                f"({latest.primary_metric} lift {latest.lift:+.3f}) on the {latest.as_of} snapshot",
                f"{RETRAIN} {model}; until a challenger wins, prefer the {latest.best_baseline} baseline",
                snapshot=latest.as_of.isoformat(),
            )
    return found
