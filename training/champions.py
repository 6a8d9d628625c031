"""The champion models as one set: loaded from the registry, applied to a request or a million-row batch.

The service and `tierwise score` both call `predict` (or `matrices` and the bundles' own
`predict_and_explain`), so an answer over HTTP and a row of the batch snapshot come from the same
arithmetic on the same features. Which column each model's prediction lands in comes from the model
table (`features.model_table`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.model_table import MODEL_NAMES, MODELS
from training.bundle import ModelBundle
from training.labels import is_active
from training.models import SPECS


@dataclass(frozen=True)
class Champions:
    """The three champion bundles and their registry versions."""

    bundles: dict[str, ModelBundle]
    versions: dict[str, int]
    run_ids: dict[str, str]

    @property
    def horizon_days(self) -> int:
        return next(iter(self.bundles.values())).horizon_days


def load_champions(names: list[str] | None = None) -> Champions:
    """Load the champion of each model from the configured MLflow registry (see `training.registry`)."""
    from training import registry

    bundles, versions, run_ids = {}, {}, {}
    for name in names or MODEL_NAMES:
        bundle, info = registry.load_bundle(name)
        bundles[name], versions[name], run_ids[name] = bundle, info.version, info.run_id
    return Champions(bundles, versions, run_ids)


def predict(champions: Champions, features: pd.DataFrame) -> pd.DataFrame:
    """Predictions for every row of `features` (catalog feature columns; `customer_id` kept if present),
    with `<output>_low` / `<output>_high` for a model that has an 80% interval (the expected value).
    Growth potential is NaN for customers without an order in the horizon (`answered`)."""
    out = pd.DataFrame(index=features.index)
    if "customer_id" in features:
        out["customer_id"] = features["customer_id"]
    for name, matrix in matrices(champions, features).items():
        bundle = champions.bundles[name]
        output = MODELS[name].output
        out[output] = answered(
            name, bundle.predict_matrix(matrix), features["days_since_last_order"], bundle.horizon_days
        )
        interval = bundle.predict_interval(matrix)
        if interval is not None:
            out[f"{output}_low"], out[f"{output}_high"] = interval
    return out


def answered(
    name: str, predicted: np.ndarray, days_since_last_order: Sequence[float | None], horizon_days: int
) -> np.ndarray:
    """`predicted`, NaN where model `name` does not speak for the customer: an `active_only` model
    (growth potential) answers only customers with an order in the last `horizon_days` days, the
    customers its label exists for (`training.labels.is_active`)."""
    if not SPECS[name].active_only:
        return predicted
    days = pd.to_numeric(pd.Series(days_since_last_order), errors="coerce").to_numpy(dtype=float)
    return np.where(is_active(days, horizon_days), predicted, np.nan)


def matrices(champions: Champions, features: pd.DataFrame | Mapping[str, Sequence]) -> dict[str, np.ndarray]:
    """Each champion's input matrix; the champions usually share one input layout, built once."""
    by_layout: dict[tuple, np.ndarray] = {}
    for bundle in champions.bundles.values():
        if bundle.layout not in by_layout:
            by_layout[bundle.layout] = bundle.matrix(features)
    return {name: by_layout[bundle.layout] for name, bundle in champions.bundles.items()}
