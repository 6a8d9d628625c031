"""The promotion rule: when a newly trained version takes the `champion` alias.

A challenger is tested on the newest matured cutoff (the run's test cutoff, whose horizon has just
ended). It becomes champion only if, on that cutoff, its primary metric beats the champion's *and*
the best baseline's: a model that ranks customers no better than days-since-last-order or BG/NBD
is not worth serving in place of one that does. The first model of a name must beat the best
baseline too: one that does not is registered but not promoted, and until a version wins, the
service and batch scoring answer from the model's servable baseline (`training.fallback`).
"""

from __future__ import annotations

from datetime import date

import numpy as np

from training import evaluate, registry
from training.fit import TrainingData
from training.spec import ModelSpec


def decide_promotion(
    spec: ModelSpec,
    candidate: float,
    test_cutoff: date,
    test: TrainingData,
    baseline_metrics: dict[str, dict[str, float]] | None = None,
) -> tuple[bool, str]:
    """Whether the challenger with primary metric `candidate` on `test_cutoff` takes the alias, and why.

    A champion tested on the same cutoff is compared by its recorded test metric (same recipe, fair).
    A champion tested elsewhere is scored on this test cutoff's rows (`test`); it may have trained
    on this period, so the comparison errs towards keeping it.
    """
    metric = spec.primary_metric
    best_name, best = _best_baseline(baseline_metrics or {}, metric)
    current = registry.champion(spec.name)
    if current is None:
        if best_name and candidate <= best:
            return False, (
                f"no champion yet, and {metric} {candidate:.4f} does not beat the {best_name} baseline "
                f"({best:.4f}, {best - candidate:.4f} better)"
            )
        against = (
            f", and {metric} {candidate:.4f} beats the {best_name} baseline ({best:.4f})" if best_name else ""
        )
        return True, f"no champion yet{against}"
    if current.tags.get("test_cutoff") == str(test_cutoff) and "test_metric" in current.tags:
        incumbent = float(current.tags["test_metric"])
    else:
        bundle, _ = registry.load_bundle(spec.name)
        incumbent = evaluate.score(spec, test.y, bundle.predict(test.frame))[metric]
    if candidate <= incumbent:
        return False, f"{metric} {candidate:.4f} does not beat champion v{current.version} ({incumbent:.4f})"
    if best_name and candidate <= best:
        return False, (
            f"{metric} {candidate:.4f} beats champion v{current.version} ({incumbent:.4f}) "
            f"but not the {best_name} baseline ({best:.4f})"
        )
    against = f" and the {best_name} baseline ({best:.4f})" if best_name else ""
    return True, f"{metric} {candidate:.4f} beats champion v{current.version} ({incumbent:.4f}){against}"


def _best_baseline(baseline_metrics: dict[str, dict[str, float]], metric: str) -> tuple[str | None, float]:
    scored = {name: values.get(metric, np.nan) for name, values in baseline_metrics.items()}
    scored = {name: value for name, value in scored.items() if np.isfinite(value)}
    if not scored:
        return None, -np.inf
    name = max(scored, key=scored.get)
    return name, scored[name]
