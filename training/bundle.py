"""A trained model as the service and batch scoring use it: booster, feature order, category codes, calibration.

One object, saved as one folder (an MLflow model folder plus `tierwise.json`), so that scoring a
customer is the same arithmetic in training, batch scoring and the API: features in catalog order,
strings mapped to the codes seen in training (unknown → missing), the raw LightGBM score, then Platt
scaling for classifiers. The service calls `predict_matrix` on the booster directly: the sklearn
wrapper costs ~1 ms per one-row call, the booster ~0.06 ms.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from training.intervals import ValueInterval

META_FILE = "tierwise.json"
#: Below this many rows LightGBM predicts on one thread: waking OpenMP's threads costs more than a
#: small prediction (one row: 3.6 ms instead of 48 ms on this busy 2-core box).
SINGLE_THREAD_ROWS = 5_000
#: The same for contributions (TreeSHAP), which cost ~100x a prediction per row.
SINGLE_THREAD_CONTRIBUTION_ROWS = 64
BOOSTER_FILE = "model.lgb"
INTERVAL_LOW_FILE = "interval_low.lgb"
INTERVAL_HIGH_FILE = "interval_high.lgb"


@dataclass
class ModelBundle:
    """A fitted model and everything needed to apply it.

    Attributes:
        name: Model name (a row of `features.model_table`).
        booster: The LightGBM booster.
        feature_names: Input columns, in the order the booster expects.
        categories: For string features, the values seen in training; their position is the code.
        calibration: Platt scaling `(slope, intercept)` on the logit, for classifiers.
        horizon_days: The horizon the labels looked ahead.
        interval: For values, the conformalized 80% interval models (`training.intervals`).
        level_anchor: For an anchored value model, `sum(label) / sum(spend_90d)` over its newest
            training cutoff (`training.level_anchor`); None: predictions are used as they are.
    """

    name: str
    booster: lgb.Booster
    feature_names: list[str]
    categories: dict[str, list[str]]
    calibration: tuple[float, float] | None
    horizon_days: int
    interval: ValueInterval | None = None
    level_anchor: float | None = None

    def matrix(self, frame: pd.DataFrame | Mapping[str, Sequence]) -> np.ndarray:
        """Features as the float matrix the booster reads (strings → codes, unknown → NaN).

        Args:
            frame: A DataFrame, or a mapping of column name to a list of values (the service's few rows:
                no pandas overhead, ~20x faster for one row). Missing columns are missing values.
        """
        if not isinstance(frame, pd.DataFrame):
            return self._matrix_from_lists(frame)
        columns = []
        for name in self.feature_names:
            values = frame[name] if name in frame else pd.Series(np.nan, index=frame.index)
            if name in self.categories:
                codes = pd.Categorical(values.astype("object"), categories=self.categories[name]).codes
                columns.append(np.where(codes < 0, np.nan, codes).astype(np.float64))
            else:
                columns.append(pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64))
        return np.column_stack(columns) if columns else np.empty((len(frame), 0))

    def _matrix_from_lists(self, columns: Mapping[str, Sequence]) -> np.ndarray:
        rows = len(next(iter(columns.values()))) if columns else 0
        missing = [None] * rows
        ordered = []
        for name in self.feature_names:
            values = columns.get(name)
            if values is None:
                ordered.append(missing)
            elif name in self.categories:
                codes = self._codes[name]
                ordered.append([codes.get(v) for v in values])
            else:
                ordered.append(values)
        # One conversion for the whole matrix (None → NaN): per-column arrays cost ~2 us each.
        return np.ascontiguousarray(np.array(ordered, dtype=np.float64).reshape(len(ordered), rows).T)

    @cached_property
    def layout(self) -> tuple:
        """What `matrix` depends on: bundles with equal layouts read the same matrix."""
        return (tuple(self.feature_names), repr(sorted(self.categories.items())))

    @cached_property
    def _codes(self) -> dict[str, dict[str, int]]:
        return {
            name: {value: code for code, value in enumerate(seen)} for name, seen in self.categories.items()
        }

    def predict_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """Calibrated probability (classifier) or expected value (regression) for each row."""
        raw = self.booster.predict(matrix, raw_score=self.calibration is not None, **_threads(matrix))
        if self.calibration is None:
            return raw
        slope, intercept = self.calibration
        return 1.0 / (1.0 + np.exp(-(slope * raw + intercept)))

    def predict_and_explain(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`predict_matrix` and `contributions` from one LightGBM pass: the raw score is the sum of
        the contributions, so the service halves its calls into LightGBM (each costs ~0.1 ms even for
        one row)."""
        contributions = self.contributions(matrix)
        return self.from_raw(contributions.sum(axis=1)), contributions

    def from_raw(self, raw: np.ndarray) -> np.ndarray:
        """Prediction from raw scores (sums of contributions): calibrated, or through the objective's link."""
        if self.calibration is not None:
            slope, intercept = self.calibration
            return 1.0 / (1.0 + np.exp(-(slope * raw + intercept)))
        return self._inverse_link(raw)

    @cached_property
    def _inverse_link(self):
        """Raw score → prediction, as LightGBM applies it for the booster's objective."""
        header = self.booster.model_to_string(num_iteration=1).split("\n", 40)
        objective = next((line.split("=", 1)[1] for line in header if line.startswith("objective=")), "")
        if objective.startswith(("tweedie", "poisson", "gamma")):
            return np.exp
        if objective.startswith(("binary", "cross_entropy")):
            return lambda raw: 1.0 / (1.0 + np.exp(-raw))
        if objective.startswith(("regression", "huber", "fair", "quantile", "mape")) or not objective:
            return lambda raw: raw
        raise ValueError(f"{self.name}: no inverse link known for objective {objective!r}")

    def predict_interval(
        self, matrix: np.ndarray, level_factor: float = 1.0
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The 80% interval of each row's value, scaled by the population's `level_factor`
        (`training.level_anchor`); None for a model without one."""
        return None if self.interval is None else self.interval.predict(matrix, level_factor)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.predict_matrix(self.matrix(frame))

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """Per-feature contributions to the raw score (SHAP values from LightGBM), last column = bias."""
        return self.booster.predict(
            matrix, pred_contrib=True, **_threads(matrix, SINGLE_THREAD_CONTRIBUTION_ROWS)
        )

    def save(self, folder: Path) -> None:
        """Write the booster and `tierwise.json` into `folder` (which may be an MLflow model folder)."""
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / BOOSTER_FILE).exists():
            self.booster.save_model(str(folder / BOOSTER_FILE))
        self.save_meta(folder)

    def save_meta(self, folder: Path) -> None:
        """Write `tierwise.json` (features, categories, calibration, horizon, interval margin, level
        anchor) and the interval's two boosters into `folder`."""
        if self.interval is not None:
            self.interval.low.save_model(str(folder / INTERVAL_LOW_FILE))
            self.interval.high.save_model(str(folder / INTERVAL_HIGH_FILE))
        meta = {
            "name": self.name,
            "feature_names": self.feature_names,
            "categories": self.categories,
            "calibration": list(self.calibration) if self.calibration else None,
            "horizon_days": self.horizon_days,
            "interval_margin": None if self.interval is None else self.interval.margin,
            "level_anchor": self.level_anchor,
        }
        (folder / META_FILE).write_text(json.dumps(meta, indent=1))

    @classmethod
    def load(cls, folder: Path) -> ModelBundle:
        meta = json.loads((folder / META_FILE).read_text())
        calibration = tuple(meta["calibration"]) if meta["calibration"] else None
        interval = None
        if meta.get("interval_margin") is not None:
            interval = ValueInterval(
                lgb.Booster(model_file=str(folder / INTERVAL_LOW_FILE)),
                lgb.Booster(model_file=str(folder / INTERVAL_HIGH_FILE)),
                float(meta["interval_margin"]),
            )
        return cls(
            name=meta["name"],
            booster=lgb.Booster(model_file=str(folder / BOOSTER_FILE)),
            feature_names=meta["feature_names"],
            categories=meta["categories"],
            calibration=calibration,  # type: ignore[arg-type]
            horizon_days=meta["horizon_days"],
            interval=interval,
            level_anchor=meta.get("level_anchor"),  # None in bundles saved before the anchor
        )


def _threads(matrix: np.ndarray, single_below: int = SINGLE_THREAD_ROWS) -> dict[str, int]:
    return {"num_threads": 1} if len(matrix) < single_below else {}


def category_vocabulary(frame: pd.DataFrame, string_features: list[str]) -> dict[str, list[str]]:
    """Sorted distinct values of each string feature (missing values excluded)."""
    return {name: sorted(frame[name].dropna().astype(str).unique().tolist()) for name in string_features}
