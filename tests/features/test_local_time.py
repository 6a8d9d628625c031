"""Dayparts and weekends in the shop's own time zone, recorded by its first import."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from features.errors import InputError
from features.settings import Settings
from pipelines import build_features
from pipelines.import_data import import_file

ORDERS = """customer_id,order_id,ordered_at,amount
c1,o1,2024-03-01 20:00:00,10.0
c1,o2,2024-03-08 20:30:00,12.0
c1,o3,2024-03-16 09:00:00,8.0
c2,o4,2024-03-02 11:00:00,5.0
c3,o5,2024-03-04 01:00:00,6.0
"""


def _features(tmp_path: Path, timezone: str | None):
    settings = Settings.resolve(tmp_path / "home")
    orders = tmp_path / "orders.csv"
    orders.write_text(ORDERS)
    import_file(settings, orders, [], timezone=timezone)
    build_features.build(settings, [date(2024, 3, 20)])
    return settings, settings.feature_snapshots.read(date(2024, 3, 20)).set_index("customer_id")


def test_an_order_at_20_00_in_shanghai_is_an_evening_order(tmp_path):
    _, features = _features(tmp_path, "Asia/Shanghai")
    c1 = features.loc["c1"]
    assert c1.evening_order_share_365d == pytest.approx(2 / 3) and c1.preferred_hour_365d == 20
    assert c1.morning_order_share_365d == pytest.approx(1 / 3)


def test_a_saturday_morning_in_shanghai_is_a_weekend_order(tmp_path):
    _, features = _features(tmp_path, "Asia/Shanghai")
    assert features.loc["c1"].weekend_order_share_365d == pytest.approx(1 / 3)  # 2024-03-16 is a Saturday
    assert features.loc["c2"].weekend_order_share_365d == 1.0  # Saturday 11:00 local, Saturday 03:00 UTC


def test_a_monday_01_00_in_shanghai_is_a_monday_order_though_it_is_sunday_in_utc(tmp_path):
    _, features = _features(tmp_path, "Asia/Shanghai")
    assert features.loc["c3"].preferred_weekday_365d == 1 and features.loc["c3"].weekend_order_share_365d == 0


def test_without_a_zone_the_same_orders_are_read_in_utc(tmp_path):
    _, features = _features(tmp_path, None)
    assert features.loc["c1"].evening_order_share_365d == pytest.approx(2 / 3)  # read as 20:00 UTC


def test_a_later_import_in_another_zone_is_refused_naming_the_recorded_one(tmp_path):
    settings, _ = _features(tmp_path, "Asia/Shanghai")
    more = tmp_path / "more.csv"
    more.write_text("customer_id,order_id,ordered_at,amount\nc3,o9,2024-03-20 10:00:00,4.0\n")
    with pytest.raises(InputError, match="this home's orders are in Asia/Shanghai"):
        import_file(settings, more, [], timezone="Europe/Berlin")
    report = import_file(settings, more, [])  # the recorded zone applies
    assert report.orders_added == 1
