"""The promotion rule: when a newly trained version takes the `champion` alias."""

from __future__ import annotations

from datetime import date

from training import evaluate, registry
from training.fit import TrainingData
from training.spec import ModelSpec


def decide_promotion(
    spec: ModelSpec, candidate: float, test_cutoff: date, test: TrainingData
) -> tuple[bool, str]:
    """Champion only if better on the same test cutoff by the primary metric; returns (promote, why).

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
