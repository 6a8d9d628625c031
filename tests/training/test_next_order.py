"""The next-order model: censored customers get no date, F(t) is a calibrated, monotone distribution."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from features.errors import InputError
from training.btyd import BgNbdParams, prob_alive
from training.metrics import expected_calibration_error
from training.next_order import (
    NextOrderModel,
    bgnbd_cdf,
    fit_next_order,
    next_order_metrics,
    recalibrate,
)

FEATURES = ["interval_days", "days_since_last_order", "gone", "noise"]
RATE_FEATURES = [f"x{i}" for i in range(6)]
HORIZON = 60


def _rhythm_customers(rng: np.random.Generator, n: int, gone_share: float) -> pd.DataFrame:
    """Regular customers order every `interval_days` (±1 day); the `gone` ones never order again."""
    interval = rng.uniform(4, 20, n)
    since = rng.uniform(0, 1, n) * interval
    gone = rng.random(n) < gone_share
    since[gone] = rng.uniform(100, 200, gone.sum())
    due = np.clip(interval - since + rng.normal(0, 1, n), 0, None)
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in rng.integers(0, 10**9, n)],
            "interval_days": interval,
            "days_since_last_order": since,
            "gone": gone.astype(float),
            "noise": rng.normal(size=n),
            "days_to_next_order": np.where(gone, np.nan, due),
            "due_in": np.where(gone, np.nan, interval - since),
        }
    )


def _exponential_customers(
    rng: np.random.Generator, n: int, slowdown: float = 1.0
) -> tuple[pd.DataFrame, np.ndarray]:
    """Orders at a known rate per day (0.005 to 0.1, set by x0..x3; x4, x5 are noise): the true
    P(order within 30 days) of each customer is known."""
    x = rng.uniform(0, 1, (n, 6))
    rate = 0.005 * np.exp(0.75 * x[:, :4].sum(axis=1)) / slowdown
    wait = rng.exponential(1.0 / rate)
    frame = pd.DataFrame(x, columns=RATE_FEATURES)
    frame["customer_id"] = [f"e{i}" for i in range(n)]
    frame["days_to_next_order"] = np.where(wait < HORIZON, wait, np.nan)
    return frame, 1.0 - np.exp(-30 * rate)


def test_customers_who_never_order_again_get_no_date_and_regular_ones_get_their_rhythm():
    rng = np.random.default_rng(0)
    model = fit_next_order(_rhythm_customers(rng, 3_000, 0.3), FEATURES, HORIZON)
    new = _rhythm_customers(rng, 1_000, 0.3)
    predicted = model.predict(new)["expected_next_order_days"]
    gone = new["gone"] == 1
    assert predicted[gone].isna().all()
    assert predicted[~gone].notna().all()
    assert (predicted[~gone] - new.loc[~gone, "due_in"]).abs().mean() < 2.5


def test_the_predicted_distribution_never_falls_as_the_horizon_grows():
    # Tiny leaves and big steps overfit on purpose: without the monotone constraint on the horizon,
    # 19% of these customers get an F(t) that falls somewhere on the grid.
    rng = np.random.default_rng(0)
    overfit = {"min_child_samples": 2, "num_leaves": 63, "learning_rate": 0.3}
    model = fit_next_order(_rhythm_customers(rng, 1_500, 0.2), FEATURES, HORIZON, params=overfit)
    cdf = model.cdf(_rhythm_customers(rng, 5_000, 0.2))
    assert (np.diff(cdf, axis=1) >= 0).all()


def test_p_order_30d_matches_the_observed_rate_of_new_customers():
    rng = np.random.default_rng(2)
    train, _ = _exponential_customers(rng, 5_000)
    model = fit_next_order(train, RATE_FEATURES, HORIZON)
    test, truth = _exponential_customers(rng, 20_000)
    p30 = model.predict(test)["p_order_30d"].to_numpy()
    ordered = (test["days_to_next_order"] < 30).to_numpy(dtype=float)
    assert expected_calibration_error(ordered, p30) < 0.03
    assert np.abs(p30 - truth).mean() < 0.06


def test_recalibration_on_a_later_cutoff_follows_a_falling_order_rate():
    rng = np.random.default_rng(7)
    model = fit_next_order(_exponential_customers(rng, 5_000)[0], RATE_FEATURES, HORIZON)
    later, _ = _exponential_customers(rng, 5_000, slowdown=2.0)
    later["days_to_next_order"] = later["days_to_next_order"].where(later["days_to_next_order"] < 35)
    test, _ = _exponential_customers(rng, 20_000, slowdown=2.0)
    rate = (test["days_to_next_order"] < 30).mean()
    assert model.predict(test)["p_order_30d"].mean() - rate > 0.1
    recalibrated = recalibrate(model, later, 35).predict(test)["p_order_30d"]
    assert abs(recalibrated.mean() - rate) < 0.02


def test_bgnbd_order_probability_in_days_matches_the_model_story_simulated_in_weeks():
    # Given the history (x, t_x, T), average over rate and dropout draws weighted by the history's
    # likelihood: P(order within t) = E[alive and a Poisson purchase in t] / E[likelihood].
    params, rng = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426), np.random.default_rng(3)
    x, t_x, T = 2.0, 6.0, 10.0
    rate = rng.gamma(params.r, 1.0 / params.alpha, 2_000_000)
    dropout = rng.beta(params.a, params.b, rate.size)
    alive = (1 - dropout) ** x * rate**x * np.exp(-rate * T)
    dead = dropout * (1 - dropout) ** (x - 1) * rate**x * np.exp(-rate * t_x)
    summary = pd.DataFrame({"frequency": [x], "recency": [t_x], "T": [T]})
    grid = (7, 30, 60)
    computed = bgnbd_cdf(params, grid, summary, period_days=7.0)[0]
    simulated = [np.sum(alive * (1 - np.exp(-rate * days / 7.0))) / np.sum(alive + dead) for days in grid]
    np.testing.assert_allclose(computed, simulated, atol=0.01)
    assert computed[-1] < prob_alive(params, x, t_x, T)


def test_date_errors_count_only_customers_who_ordered_and_got_a_date():
    actual = np.array([2.0, 10.0, np.nan, np.nan])
    median = np.array([4.0, np.nan, 20.0, np.nan])
    scores = next_order_metrics(actual, median, p_7d=[0.9, 0.1, 0.2, 0.1], p_30d=[1.0, 0.9, 0.3, 0.0])
    assert scores["mae_days"] == 2.0
    assert scores["no_date_share"] == 0.5
    assert scores["date_for_silent_share"] == 0.5
    assert scores["auc_30d"] == 1.0


def test_examples_without_the_label_column_are_refused_naming_it():
    examples = _rhythm_customers(np.random.default_rng(4), 200, 0.2).drop(columns="days_to_next_order")
    with pytest.raises(InputError, match="days_to_next_order"):
        fit_next_order(examples, FEATURES, HORIZON)


def test_a_horizon_shorter_than_30_days_is_refused():
    examples = _rhythm_customers(np.random.default_rng(5), 200, 0.2)
    with pytest.raises(InputError, match="at least 30 days"):
        fit_next_order(examples, FEATURES, 28)


def test_a_model_read_back_from_json_or_pickle_answers_the_same():
    rng = np.random.default_rng(6)
    model = fit_next_order(_rhythm_customers(rng, 1_000, 0.2), FEATURES, HORIZON)
    new = _rhythm_customers(rng, 100, 0.2)
    expected = model.predict(new)
    for copy in (NextOrderModel.from_json(model.to_json()), pickle.loads(pickle.dumps(model))):
        pd.testing.assert_frame_equal(copy.predict(new), expected)


def test_customers_are_predicted_in_bounded_chunks_with_the_same_answers(monkeypatch):
    from training import next_order

    rng = np.random.default_rng(7)
    model = fit_next_order(_rhythm_customers(rng, 1_000, 0.2), FEATURES, HORIZON)
    new = _rhythm_customers(rng, 101, 0.2)
    whole = model.cdf(new)
    monkeypatch.setattr(next_order, "CDF_CHUNK", 7)  # 15 chunks, the last of 3 customers
    np.testing.assert_array_equal(model.cdf(new), whole)
    assert model.cdf(new.head(0)).shape == (0, len(model.grid))
