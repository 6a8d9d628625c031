"""Evaluation metrics: hand-computed small cases, limiting cases, and the conventions they document."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from training.metrics import (
    bootstrap_interval,
    calibration_table,
    classification_metrics,
    decile_mape,
    decile_table,
    expected_calibration_error,
    gain_curve,
    normalized_gini,
    regression_metrics,
    top_decile_capture,
)

# Four customers; ranked by prediction the actuals come out as 30, 0, 10, 0.
ACTUAL = np.array([0.0, 10.0, 0.0, 30.0])
PREDICTED = np.array([0.1, 0.2, 0.3, 0.4])


def value_data(n: int = 2_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Skewed spends (many zeros) and a noisy prediction of them."""
    rng = np.random.default_rng(seed)
    truth = rng.gamma(0.6, 50.0, n) * (rng.random(n) < 0.8)
    return truth, truth * rng.lognormal(0.0, 0.7, n) + rng.gamma(1.0, 5.0, n)


def test_gini_of_a_perfect_ranking_is_one() -> None:
    truth, _ = value_data()
    assert normalized_gini(truth, truth) == pytest.approx(1.0)
    assert normalized_gini(truth, np.sqrt(truth) + 3) == pytest.approx(1.0)  # only the order counts


def test_gini_by_hand() -> None:
    # gain 30/40, 30/40, 40/40, 40/40 -> raw 2 * 0.875 - 1 = 0.75; perfect: 0.75, 1, 1, 1 -> 0.875.
    assert normalized_gini(ACTUAL, PREDICTED) == pytest.approx(0.75 / 0.875)
    # reversed: gain 0, 0.25, 0.25, 1 -> raw 2 * 0.375 - 1 = -0.25.
    assert normalized_gini(ACTUAL, -PREDICTED) == pytest.approx(-0.25 / 0.875)


def test_gini_of_a_reversed_ranking_is_negative() -> None:
    truth, predicted = value_data()
    assert normalized_gini(truth, -truth) < 0
    assert 0.5 < normalized_gini(truth, predicted) < 1


def test_gini_without_any_value_is_undefined() -> None:
    assert np.isnan(normalized_gini(np.zeros(5), np.arange(5)))


def test_decile_mape_by_hand() -> None:
    # 20 customers, two per decile; deciles 2..10 are predicted 20% high, decile 1 exactly on average.
    level = np.repeat(np.arange(1.0, 11.0), 2)
    truth = level.copy()
    truth[:2] = [0.0, 2.0]
    predicted = level * 1.2
    predicted[:2] = [1.0, 1.0]
    shuffle = np.random.default_rng(3).permutation(20)  # bins follow the prediction, not the input order
    assert decile_mape(truth[shuffle], predicted[shuffle]) == pytest.approx(9 * 0.2 / 10)


def test_decile_mape_skips_deciles_without_value() -> None:
    truth = np.repeat(np.arange(0.0, 10.0), 2)  # the lowest decile has no value at all
    predicted = np.repeat(np.arange(0.0, 10.0), 2) * 1.2 + np.repeat([0.5] + [0.0] * 9, 2)
    assert decile_mape(truth, predicted) == pytest.approx(0.2)


def test_decile_table_has_ten_equal_bins_from_low_to_high() -> None:
    truth, predicted = value_data(n=1_005)
    table = decile_table(truth, predicted)
    assert list(table["decile"]) == list(range(1, 11))
    assert table["count"].sum() == 1_005 and table["count"].max() - table["count"].min() <= 1
    assert table["mean_predicted"].is_monotonic_increasing


def test_ties_do_not_break_the_deciles() -> None:
    table = decile_table(np.arange(100.0), np.zeros(100))  # every prediction tied
    assert list(table["count"]) == [10] * 10


def test_top_decile_capture_by_hand() -> None:
    assert top_decile_capture(ACTUAL, PREDICTED) == pytest.approx(30 / 40)  # top ceil(4/10) = 1 customer
    truth = np.arange(1.0, 21.0)
    assert top_decile_capture(truth, truth) == pytest.approx((20 + 19) / truth.sum())  # top 2 of 20


def test_gain_curve_by_hand() -> None:
    curve = gain_curve([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1])
    expected = pd.DataFrame(
        {"share_customers": [0.0, 0.25, 0.5, 0.75, 1.0], "share_captured": [0.0, 0.5, 0.5, 1.0, 1.0]}
    )
    pd.testing.assert_frame_equal(curve, expected)


def calibrated_probabilities(n: int = 100_000, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.0, 0.8, n)
    return (rng.random(n) < p).astype(float), p


def test_ece_of_calibrated_probabilities_is_near_zero() -> None:
    outcome, p = calibrated_probabilities()
    assert expected_calibration_error(outcome, p) < 0.01


def test_ece_of_probabilities_shifted_up_by_a_fifth_is_a_fifth() -> None:
    outcome, p = calibrated_probabilities()
    assert expected_calibration_error(outcome, p + 0.2) == pytest.approx(0.2, abs=0.01)


def test_calibration_table_uses_equal_count_bins() -> None:
    outcome, p = calibrated_probabilities(n=1_000)
    table = calibration_table(outcome, p, bins=5)
    assert list(table.columns) == ["bin", "mean_predicted", "observed_rate", "count"]
    assert list(table["count"]) == [200] * 5
    assert table["mean_predicted"].is_monotonic_increasing


def test_bootstrap_interval_contains_the_point_estimate() -> None:
    truth, predicted = value_data()
    low, high = bootstrap_interval(normalized_gini, truth, predicted, n_boot=100)
    assert low < normalized_gini(truth, predicted) < high
    assert bootstrap_interval(normalized_gini, truth, predicted, n_boot=100) == (low, high)  # seeded


def test_bootstrap_interval_skips_resamples_where_the_metric_is_undefined() -> None:
    outcome = np.zeros(30)
    outcome[0] = 1.0  # many resamples have no positive, where AUC raises
    score = np.linspace(1.0, 0.0, 30)
    low, high = bootstrap_interval(roc_auc_score, outcome, score, n_boot=50)
    assert 0.0 <= low <= roc_auc_score(outcome, score) <= high <= 1.0


def test_classification_metrics() -> None:
    outcome = np.array([0, 0, 0, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    result = classification_metrics(outcome, p)
    assert set(result) == {"roc_auc", "pr_auc", "brier", "ece", "base_rate"}
    assert result["roc_auc"] == 1.0 and result["pr_auc"] == 1.0
    assert result["brier"] == pytest.approx((0.01 + 0.04 + 0.09 + 0.04 + 0.01) / 5)
    assert result["base_rate"] == pytest.approx(0.4)
    assert np.isnan(classification_metrics(np.zeros(5), p)["roc_auc"])


def test_regression_metrics() -> None:
    truth, predicted = value_data()
    result = regression_metrics(truth, predicted)
    assert set(result) == {
        "normalized_gini",
        "spearman",
        "decile_mape",
        "top_decile_capture",
        "mae",
        "predicted_total_ratio",
    }
    assert result["normalized_gini"] == pytest.approx(normalized_gini(truth, predicted))
    doubled = regression_metrics(ACTUAL, 2 * ACTUAL)
    assert doubled["predicted_total_ratio"] == pytest.approx(2.0)
    assert doubled["spearman"] == pytest.approx(1.0) and doubled["mae"] == pytest.approx(10.0)


def test_inputs_of_different_length_are_rejected() -> None:
    with pytest.raises(ValueError, match="values"):
        normalized_gini([1.0, 2.0], [1.0])
