"""Platt scaling follows the latest cutoffs: a churn rate that drifts across the stacked cutoffs is
calibrated to where it is now, not to its average over the year."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.churn import SPEC
from training.fit import MIN_CALIBRATION_CLASS, TrainingData, fit_bundle, latest_rows

CUTOFFS = pd.to_datetime(["2017-03-04", "2017-03-11", "2017-03-18", "2017-03-25"], utc=True)


def drifting(rates: list[float], per_cutoff: int, seed: int) -> TrainingData:
    """Customers at each cutoff; churn odds rise with days since the last order, and the cutoff's
    base rate is `rates[i]`."""
    rng = np.random.default_rng(seed)
    frames = []
    for cutoff, rate in zip(CUTOFFS, rates, strict=True):
        days = rng.exponential(20, per_cutoff)
        logit = np.log(rate / (1 - rate)) + 0.04 * (days - 20)
        churn = (rng.random(per_cutoff) < 1 / (1 + np.exp(-logit))).astype(float)
        frames.append(
            pd.DataFrame({"event_timestamp": cutoff, "days_since_last_order": days, "churn": churn})
        )
    frame = pd.concat(frames, ignore_index=True)
    return TrainingData(frame, ["days_since_last_order"], [], "churn")


def test_churn_probabilities_are_calibrated_to_the_latest_cutoffs_rate():
    rates = [0.02, 0.04, 0.06, 0.10]
    train, valid = drifting(rates, 4_000, seed=1), drifting(rates, 2_000, seed=2)
    bundle, _ = fit_bundle(SPEC, train, valid, 92, {"n_estimators": 50})
    latest = valid.frame[valid.frame["event_timestamp"] == CUTOFFS[-1]]
    assert abs(bundle.predict(latest).mean() - latest["churn"].mean()) < 0.01
    assert abs(bundle.predict(valid.frame).mean() - valid.frame["churn"].mean()) > 0.01


def test_calibration_reaches_back_until_each_class_has_enough_examples():
    # 30 customers a cutoff, 8 of them churners: the last cutoff has 8, the last two 16, the last three 24.
    assert MIN_CALIBRATION_CLASS == 20
    stamps = pd.Series(CUTOFFS.repeat(30))
    y = np.tile(np.r_[np.ones(8), np.zeros(22)], 4)
    rows = latest_rows(pd.DataFrame({"event_timestamp": stamps}), y)
    assert not rows[:30].any() and rows[30:].all()
