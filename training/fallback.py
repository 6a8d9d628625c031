"""What answers a model's question while it has no champion: the baseline its first version lost to.

A first version that does not beat the best baseline on its test cutoff is registered but not
promoted (`training.promotion`). Until a version wins, the service and batch scoring answer that
model's field from a baseline instead, fitted at the same test cutoff and stored with the run
(`training.registry.log_fallback`), and say so (`source`). Only a baseline whose score *is* the
model's output can stand in for it: BG/NBD's P(no order in the horizon) is a churn probability and
BG/NBD × Gamma-Gamma's expected spend is an expected value, while days since the last order or a
quintile sum only rank customers. A model without such a baseline (growth potential) answers null.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.baselines import BTYD_FEATURES, BtydBaseline

#: Per model, the baseline that gives its output and the `BtydBaseline.scores` column holding it.
SERVABLE: dict[str, tuple[str, str]] = {
    "churn": ("btyd_p_no_order", "p_no_order"),
    "customer_value": ("btyd_expected_value", "expected_value"),
}


@dataclass(frozen=True)
class Fallback:
    """A model's servable baseline: its name and the parameters fitted at the run's test cutoff."""

    model: str
    baseline: str
    btyd: BtydBaseline

    @property
    def source(self) -> str:
        """How an answer names what produced it (beside `champion v3`)."""
        return f"baseline: {self.baseline}"

    @property
    def feature_names(self) -> tuple[str, ...]:
        return BTYD_FEATURES

    @property
    def horizon_days(self) -> int:
        return self.btyd.horizon_days

    def predict(self, features: pd.DataFrame | Mapping[str, Sequence]) -> np.ndarray:
        """The baseline's answer per row: `BtydBaseline.scores`, the code training evaluated.

        Args:
            features: Columns `BTYD_FEATURES` (a DataFrame, or the service's mapping of lists).
        """
        frame = features if isinstance(features, pd.DataFrame) else pd.DataFrame(dict(features))
        column = SERVABLE[self.model][1]
        return self.btyd.scores(frame[list(BTYD_FEATURES)])[column].to_numpy(dtype=float)

    def to_json(self) -> str:
        return json.dumps({"model": self.model, "baseline": self.baseline, "btyd": self.btyd.to_dict()})

    @classmethod
    def from_json(cls, text: str) -> Fallback:
        data = json.loads(text)
        return cls(data["model"], data["baseline"], BtydBaseline.from_dict(data["btyd"]))


def fit_fallback(model: str, test: pd.DataFrame, horizon_days: int) -> Fallback | None:
    """The servable baseline of `model` fitted on its test-cutoff rows, as its baselines were; None
    for a model no baseline can answer for."""
    if model not in SERVABLE:
        return None
    return Fallback(model, SERVABLE[model][0], BtydBaseline.fit(test, horizon_days))
