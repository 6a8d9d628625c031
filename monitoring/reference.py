"""What a champion is monitored against: the reference it was trained with, read back from MLflow.

Training logs, in the champion's run, a seeded sample of its test-cutoff examples (features, label,
its own prediction) and its feature-importance ranking (`training.run.reference_sample`). Monitoring
compares today's features and predictions with *that* sample, so a report always compares with what
this champion learned from, and its quality with the test metrics recorded in the same run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd

from features.catalog import FEATURES_BY_NAME
from training import registry
from training.run import IMPORTANCE_ARTIFACT, REFERENCE_ARTIFACT
from training.spec import ModelSpec

PREDICTION = "prediction"


@dataclass(frozen=True)
class ChampionReference:
    """The champion of one model and its training-time reference.

    Attributes:
        sample: Test-cutoff rows: the model's features, its label and `prediction`.
        importance: Feature names, most important first (mean |SHAP| on the test cutoff).
        test_metrics: `test_*` metrics of the training run, without the prefix.
    """

    model: str
    version: int
    run_id: str
    test_cutoff: date | None
    sample: pd.DataFrame
    importance: list[str]
    test_metrics: dict[str, float]

    @property
    def features(self) -> list[str]:
        return [c for c in self.sample.columns if c in FEATURES_BY_NAME]

    @property
    def numerical(self) -> list[str]:
        return [c for c in self.features if FEATURES_BY_NAME[c].dtype != "string"]

    @property
    def categorical(self) -> list[str]:
        return [c for c in self.features if FEATURES_BY_NAME[c].dtype == "string"]


def load_reference(spec: ModelSpec) -> ChampionReference:
    """The champion of `spec`'s model and its reference (registry configured by the caller).

    Raises:
        InputError: no champion, or a champion trained before references were logged.
    """
    from features.errors import InputError

    info = registry.champion(spec.name)
    if info is None:
        raise InputError(f"{spec.name} has no champion yet: run `tierwise train --model {spec.name}`")
    sample = registry.load_frame(info.run_id, REFERENCE_ARTIFACT)
    importance = registry.load_frame(info.run_id, IMPORTANCE_ARTIFACT)["feature"].tolist()
    metrics = {
        k.removeprefix("test_"): v
        for k, v in registry.run_metrics(info.run_id).items()
        if k.startswith("test_")
    }
    cutoff = info.tags.get("test_cutoff")
    return ChampionReference(
        model=spec.name,
        version=info.version,
        run_id=info.run_id,
        test_cutoff=date.fromisoformat(cutoff) if cutoff else None,
        sample=sample,
        importance=importance,
        test_metrics=metrics,
    )
