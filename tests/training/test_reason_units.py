"""Feature values as staff read them in reasons."""

from __future__ import annotations

import pytest

from training.reasons import in_unit


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [
        ("days_since_last_order", 44.6, "45 days"),
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
