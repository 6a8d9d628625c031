"""Uplift: which customers a campaign changes most, learned from a measured launch with its control group.

Targeting the customers most at risk sends the offer to many who would have stayed anyway and to some
who leave whatever we do. An uplift model estimates, per customer, the outcome with the offer minus
the outcome without it. Here it is the two-model learner of scikit-uplift (`TwoModels`, "T-learner"):
one LightGBM model on the treated customers, one on the control group, uplift = their difference.
It is judged on customers it did not learn from by the Qini coefficient (area between the Qini curve
and random targeting): against targeting by churn risk and against random targeting, each with a
bootstrap 95% interval over those customers.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from features.catalog import FEATURES

#: Numeric catalog features the uplift models read (the snapshot at the launch date).
UPLIFT_FEATURES = [f.name for f in FEATURES if f.dtype != "string"]
HOLDOUT_SHARE = 0.3
QINI_RESAMPLES = 200
#: Small trees: an uplift is a difference of two noisy fits, and on a planted campaign (8,000
#: customers, `tests/pipelines/test_uplift.py`) these beat 200 trees of 15 leaves on held-out Qini.
LGB_PARAMS = {
    "n_estimators": 100,
    "learning_rate": 0.05,
    "num_leaves": 7,
    "min_child_samples": 50,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "deterministic": True,
    "force_row_wise": True,
    "verbose": -1,
}


@dataclass(frozen=True)
class UpliftModel:
    """The two arms' boosters; uplift = treated prediction - control prediction."""

    treated: lgb.Booster
    control: lgb.Booster
    feature_names: list[str]

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        matrix = features.reindex(columns=self.feature_names).to_numpy(dtype=float)
        return self.treated.predict(matrix) - self.control.predict(matrix)


@dataclass(frozen=True)
class Targeting:
    """How well one way of ranking customers finds the ones the campaign changes (held-out customers)."""

    qini: float
    low: float
    high: float
    uplift_auc: float


def fit(
    features: pd.DataFrame, outcome: np.ndarray, treated: np.ndarray, binary: bool, seed: int = 0
) -> UpliftModel:
    """Fit the two arms on `features` (numeric columns) with the outcome of each customer."""
    from sklift.models import TwoModels

    names = [name for name in UPLIFT_FEATURES if name in features]
    estimator = lgb.LGBMClassifier if binary else lgb.LGBMRegressor
    learner = TwoModels(
        estimator_trmnt=estimator(random_state=seed, **LGB_PARAMS),
        estimator_ctrl=estimator(random_state=seed + 1, **LGB_PARAMS),
        method="vanilla",
    )
    learner.fit(features[names].to_numpy(dtype=float), outcome, treated.astype(int))
    return UpliftModel(learner.estimator_trmnt.booster_, learner.estimator_ctrl.booster_, names)


def targeting(outcome: np.ndarray, scores: np.ndarray, treated: np.ndarray, seed: int = 0) -> Targeting:
    """Qini coefficient of ranking by `scores` (higher first), with a bootstrap 95% interval."""
    from sklift.metrics import qini_auc_score, uplift_auc_score

    treatment = treated.astype(int)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(QINI_RESAMPLES):
        picked = rng.integers(0, len(outcome), len(outcome))
        if treatment[picked].min() == treatment[picked].max():
            continue
        draws.append(qini_auc_score(outcome[picked], scores[picked], treatment[picked]))
    low, high = np.percentile(draws, [2.5, 97.5])
    return Targeting(
        float(qini_auc_score(outcome, scores, treatment)),
        float(low),
        float(high),
        float(uplift_auc_score(outcome, scores, treatment)),
    )


def holdout_mask(customer_ids: pd.Series, seed: int = 0) -> np.ndarray:
    """True for the customers kept out of fitting (a seeded hash, so the same customers every time)."""
    keys = pd.util.hash_pandas_object(customer_ids.astype(str) + f"|uplift|{seed}", index=False).to_numpy()
    return (keys % 1000) < HOLDOUT_SHARE * 1000
