"""Drift on real data: the reference period against itself flags nothing; a constructed price rise
flags the money features and the value predictions, and nothing else."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from features.settings import Settings
from pipelines.monitor import monitor
from tests.monitoring.conftest import MONEY, TEST_CUTOFF

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def unchanged(monitored):
    return monitored[1]


@pytest.fixture(scope="module")
def price_rise(price_rise_home: Settings):
    return monitor(price_rise_home, TEST_CUTOFF + timedelta(days=1))


def test_the_reference_period_against_itself_flags_no_feature(unchanged):
    for health in unchanged.health.values():
        assert health.features.drifted == [] and len(health.features.columns) > 40


def test_the_reference_period_against_itself_flags_no_prediction_and_raises_no_drift_alert(unchanged):
    for health in unchanged.health.values():
        assert health.prediction is not None and not health.prediction.drifted
        assert abs(health.mean_shift) < 1e-9
    assert not [a for a in unchanged.alerts if a["rule"] in ("feature_drift", "prediction_drift")]


def test_a_price_rise_flags_the_money_features_and_only_them(price_rise):
    drifted = set(price_rise.health["customer_value"].features.drifted)
    assert {"spend_365d", "spend_lifetime", "avg_order_value_365d", "spend_90d"} <= drifted
    assert drifted <= MONEY


def test_a_price_rise_flags_the_value_predictions_with_an_alert_naming_the_model(price_rise):
    value = price_rise.health["customer_value"]
    assert value.prediction.drifted and value.mean_shift > 0.05
    rules = {(a["rule"], a["model"]) for a in price_rise.alerts}
    assert ("prediction_drift", "customer_value") in rules and ("feature_drift", "customer_value") in rules
    assert all(a["action"] for a in price_rise.alerts)


def test_the_command_prints_a_verdict_per_model_writes_the_alerts_and_exits_with_the_alert_code(
    price_rise_home: Settings, price_rise
):
    from tests.pipelines.test_cli import tierwise

    day = (TEST_CUTOFF + timedelta(days=1)).isoformat()
    result = tierwise("monitor", "--as-of", day, home=price_rise_home.home)
    assert result.returncode == 5, result.stderr
    for name in ("churn", "customer_value", "growth_potential"):
        assert f"{name} v1: grade " in result.stdout
    records = json.loads((price_rise_home.data_dir / "alerts" / "monitoring" / f"{day}.json").read_text())
    assert {(r["rule"], r["model"]) for r in records} == {(a["rule"], a["model"]) for a in price_rise.alerts}
    verdicts = tierwise("monitor", "--as-of", day, "--format", "json", home=price_rise_home.home)
    assert verdicts.returncode == 5
    rows = {row["model"]: row for row in json.loads(verdicts.stdout)}
    assert set(rows) == {"churn", "customer_value", "growth_potential"}
    assert rows["customer_value"]["alerts"] > 0 and isinstance(rows["churn"]["mean_prediction_shift"], float)
