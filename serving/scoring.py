"""Scoring customers with the champion models: one function for a request and for a million-row batch.

The service and `tierwise score` both call `predict`, so an answer over HTTP and a row of the batch
snapshot come from the same arithmetic on the same features. `reasons` turns LightGBM's
per-prediction contributions into the few features that pushed a prediction most, named in words.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.catalog import FEATURES_BY_NAME
from training.bundle import ModelBundle

#: API field of each model's prediction.
OUTPUT_FIELDS = {
    "churn": "churn_probability",
    "customer_value": "expected_value",
    "growth_potential": "growth_potential",
}


@dataclass(frozen=True)
class Champions:
    """The three champion bundles and their registry versions."""

    bundles: dict[str, ModelBundle]
    versions: dict[str, int]

    @property
    def horizon_days(self) -> int:
        return next(iter(self.bundles.values())).horizon_days


def load_champions(names: list[str] | None = None) -> Champions:
    """Load the champion of each model from the configured MLflow registry (see `training.registry`)."""
    from training import registry

    bundles, versions = {}, {}
    for name in names or list(OUTPUT_FIELDS):
        bundle, info = registry.load_bundle(name)
        bundles[name], versions[name] = bundle, info.version
    return Champions(bundles, versions)


def predict(champions: Champions, features: pd.DataFrame) -> pd.DataFrame:
    """Predictions for every row of `features` (catalog feature columns; `customer_id` kept if present)."""
    out = pd.DataFrame(index=features.index)
    if "customer_id" in features:
        out["customer_id"] = features["customer_id"]
    for name, bundle in champions.bundles.items():
        out[OUTPUT_FIELDS[name]] = bundle.predict_matrix(bundle.matrix(features))
    return out


def reasons(bundle: ModelBundle, matrix: np.ndarray, top: int = 3) -> list[list[dict]]:
    """For each row, the `top` features with the largest absolute contribution to the raw score.

    Each reason: feature name, its description from the catalog, the value, and whether it pushed the
    prediction up or down.
    """
    contributions = bundle.contributions(matrix)[:, : len(bundle.feature_names)]
    order = np.argsort(-np.abs(contributions), axis=1)[:, :top]
    result = []
    for row, picks in enumerate(order):
        items = []
        for column in picks:
            name = bundle.feature_names[column]
            value = matrix[row, column]
            shown = None if np.isnan(value) else float(value)
            if shown is not None and name in bundle.categories:
                shown = bundle.categories[name][int(value)]
            items.append(
                {
                    "feature": name,
                    "description": FEATURES_BY_NAME[name].description if name in FEATURES_BY_NAME else name,
                    "value": shown,
                    "effect": "raises" if contributions[row, column] > 0 else "lowers",
                }
            )
        result.append(items)
    return result
