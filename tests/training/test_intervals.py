"""The 80% value interval: on data with known noise, 80% of new customers fall inside it."""

from __future__ import annotations

import numpy as np
import pytest

from training.intervals import coverage_report, fit_interval


def _customers(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Spend grows with x0, its noise with x1 (heteroscedastic), x2 is irrelevant."""
    x = rng.uniform(0, 1, size=(n, 3))
    y = 100 * x[:, 0] + rng.gamma(2.0, 10 + 60 * x[:, 1], n)
    return x, y


def test_the_interval_covers_80_percent_of_new_customers_within_3_points():
    rng = np.random.default_rng(0)
    (x_train, y_train), (x_cal, y_cal), (x_test, y_test) = (_customers(rng, 4_000) for _ in range(3))
    interval = fit_interval(x_train, y_train, x_cal, y_cal, ["x0", "x1", "x2"])
    low, high = interval.predict(x_test)
    report = coverage_report(y_test, low, high, 100 * x_test[:, 0])
    assert report["coverage"] == pytest.approx(0.80, abs=0.03)
    assert all(0.65 <= c <= 0.95 for c in report["coverage_by_decile"])
    assert (low <= high).all() and (low >= 0).all()


def test_the_interval_is_wider_where_the_noise_is_larger():
    rng = np.random.default_rng(1)
    (x_train, y_train), (x_cal, y_cal) = (_customers(rng, 4_000) for _ in range(2))
    interval = fit_interval(x_train, y_train, x_cal, y_cal, ["x0", "x1", "x2"])
    calm, noisy = np.array([[0.5, 0.05, 0.5]]), np.array([[0.5, 0.95, 0.5]])
    width = lambda x: np.subtract(*interval.predict(x)[::-1])[0]  # noqa: E731
    assert width(noisy) > 2 * width(calm)
