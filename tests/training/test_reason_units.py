"""Feature values as staff read them in reasons."""

from __future__ import annotations

import pytest

from training.reasons import in_unit


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [
        ("days_since_last_order", 44.6, "45 days"),
        ("days_since_last_order", 1.2, "1 day"),
        ("orders_90d", 1.0, "1 order"),
        ("orders_90d", 12.0, "12 orders"),
        ("spend_365d", 1234.5, "1,234.50"),
        ("evening_order_share_365d", 0.354, "35%"),
        ("preferred_weekday_365d", 1.0, "Monday"),
        ("preferred_weekday_365d", 7.0, "Sunday"),
        ("preferred_hour_365d", 20.0, "20"),
        ("top_department_365d", "PRODUCE", "PRODUCE"),
        ("income_band", None, "unknown"),
    ],
)
def test_a_feature_value_reads_in_its_unit(name, value, text):
    assert in_unit(name, value) == text


@pytest.mark.parametrize(
    ("size", "text"),
    [(0.12, "12 points"), (-0.12, "12 points"), (0.01, "1 point"), (0.004, "less than 1 point")],
)
def test_a_change_of_probability_reads_in_points(size, text):
    from training.reasons import in_points

    assert in_points(size) == text
