"""Scoring customers with the champion models: one function for a request and for a million-row batch.

The service and `tierwise score` both call `predict`, so an answer over HTTP and a row of the batch
snapshot come from the same arithmetic on the same features. `reasons` turns LightGBM's
per-prediction contributions into the few features that pushed a prediction most, named in words.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

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
    run_ids: dict[str, str]

    @property
    def horizon_days(self) -> int:
        return next(iter(self.bundles.values())).horizon_days


def load_champions(names: list[str] | None = None) -> Champions:
    """Load the champion of each model from the configured MLflow registry (see `training.registry`)."""
    from training import registry

    bundles, versions, run_ids = {}, {}, {}
    for name in names or list(OUTPUT_FIELDS):
        bundle, info = registry.load_bundle(name)
        bundles[name], versions[name], run_ids[name] = bundle, info.version, info.run_id
    return Champions(bundles, versions, run_ids)


def predict(champions: Champions, features: pd.DataFrame) -> pd.DataFrame:
    """Predictions for every row of `features` (catalog feature columns; `customer_id` kept if present)."""
    out = pd.DataFrame(index=features.index)
    if "customer_id" in features:
        out["customer_id"] = features["customer_id"]
    for name, matrix in matrices(champions, features).items():
        out[OUTPUT_FIELDS[name]] = champions.bundles[name].predict_matrix(matrix)
    return out


def matrices(champions: Champions, features: pd.DataFrame | Mapping[str, Sequence]) -> dict[str, np.ndarray]:
    """Each champion's input matrix; the champions usually share one input layout, built once."""
    by_layout: dict[tuple, np.ndarray] = {}
    for bundle in champions.bundles.values():
        if bundle.layout not in by_layout:
            by_layout[bundle.layout] = bundle.matrix(features)
    return {name: by_layout[bundle.layout] for name, bundle in champions.bundles.items()}


#: What each model predicts, as staff would say it.
OUTCOMES = {
    "churn": "churn probability",
    "customer_value": "expected spend",
    "growth_potential": "growth potential",
}


def reasons(
    bundle: ModelBundle, matrix: np.ndarray, top: int = 3, contributions: np.ndarray | None = None
) -> list[list[dict]]:
    """For each row, the `top` features with the largest absolute contribution to the raw score.

    Each reason: feature name, its description from the catalog, the value, whether it pushed the
    prediction up or down, and all of that as one sentence for staff. Pass `contributions` when
    already computed (`ModelBundle.predict_and_explain`).
    """
    if contributions is None:
        contributions = bundle.contributions(matrix)
    contributions = contributions[:, : len(bundle.feature_names)]
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
            description = FEATURES_BY_NAME[name].description if name in FEATURES_BY_NAME else name
            effect = "raises" if contributions[row, column] > 0 else "lowers"
            items.append(
                {
                    "feature": name,
                    "description": description,
                    "value": shown,
                    "effect": effect,
                    "text": f"{_plain(name, description)} is {_shown(shown)}: {effect} the {OUTCOMES[bundle.name]}",
                }
            )
        result.append(items)
    return result


#: Staff wording for features whose catalog description is a formula.
PLAIN_NAMES = {
    "overdue_ratio": "Days since the last order relative to the usual gap between orders",
    "active_week_share_365d": "Share of weeks with an order",
    "spend_trend_90d": "Spend trend (last 90 days against the 90 before)",
    "orders_trend_90d": "Order trend (last 90 days against the 90 before)",
    "discount_rate_365d": "Share of the list price saved by discounts, 365 days",
    "home_ownership": "Home ownership",
}


@cache
def _plain(name: str, description: str) -> str:
    """A feature as the subject of a sentence: "Orders in the last 90 days"."""
    if name in PLAIN_NAMES:
        return PLAIN_NAMES[name]
    text = description.split(" (")[0].rstrip(".")
    text = re.sub(r"in the (\d+) days before as_of", r"in the last \1 days", text)
    text = text.replace("Days from the last order to as_of", "Days since the last order")
    return text.replace(" before as_of", "").replace("as_of", "today")


def _shown(value: float | str | None) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, str):
        return value
    return f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:.2f}"
