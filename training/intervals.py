"""An 80% interval around each customer's expected value: conformalized quantile regression.

A point value says nothing about how sure it is; a marketer spending on a customer wants to know
"between 120 and 610 next quarter". Two LightGBM models learn the 10% and 90% quantiles of the value
on the training customers; on held-out customers (calibration) the interval is widened by the
amount that makes 80% of them fall inside (Romano, Patterson and Candès, 2019: conformalized
quantile regression), which guarantees the coverage on customers like them whatever the quantile
models got wrong. The coverage is then measured on the test cutoff, overall and per value decile.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np

COVERAGE = 0.80
QUANTILE_PARAMS = {
    "num_leaves": 15,
    "learning_rate": 0.05,
    "min_data_in_leaf": 50,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "seed": 7,
    "deterministic": True,
    "verbose": -1,
}
ROUNDS = 300


@dataclass(frozen=True)
class ValueInterval:
    """The two quantile boosters and the conformal margin added on both sides (at least 0)."""

    low: lgb.Booster
    high: lgb.Booster
    margin: float

    def predict(self, matrix: np.ndarray, level_factor: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Low and high end per row, both times `level_factor`: the factor that anchors the
        population's value predictions (`training.level_anchor`) moves their interval with them."""
        low = self.low.predict(matrix) - self.margin
        high = self.high.predict(matrix) + self.margin
        low, high = np.maximum(np.minimum(low, high), 0.0), np.maximum(high, 0.0)
        return (low, high) if level_factor == 1.0 else (low * level_factor, high * level_factor)


def fit_interval(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_calibration: np.ndarray,
    y_calibration: np.ndarray,
    feature_names: list[str],
    coverage: float = COVERAGE,
) -> ValueInterval:
    """Quantile models on the training rows, conformal margin from the calibration rows."""
    alpha = 1 - coverage
    boosters = []
    for quantile in (alpha / 2, 1 - alpha / 2):
        params = {**QUANTILE_PARAMS, "objective": "quantile", "alpha": quantile}
        boosters.append(lgb.train(params, lgb.Dataset(x_train, y_train, feature_name=feature_names), ROUNDS))
    low, high = boosters[0].predict(x_calibration), boosters[1].predict(x_calibration)
    scores = np.maximum(low - y_calibration, y_calibration - high)
    n = len(scores)
    level = min(1.0, np.ceil((n + 1) * coverage) / n)
    return ValueInterval(boosters[0], boosters[1], float(np.quantile(scores, level, method="higher")))


def coverage_report(y: np.ndarray, low: np.ndarray, high: np.ndarray, prediction: np.ndarray) -> dict:
    """Share of customers inside their interval, overall and per decile of the predicted value."""
    inside = (y >= low) & (y <= high)
    ranks = np.argsort(np.argsort(prediction, kind="stable"), kind="stable")
    deciles = ranks * 10 // max(len(prediction), 1)
    return {
        "coverage": float(inside.mean()),
        "mean_width": float((high - low).mean()),
        "coverage_by_decile": [float(inside[deciles == d].mean()) for d in range(10) if (deciles == d).any()],
    }
