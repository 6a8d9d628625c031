"""Backtests against what really happened, and training on orders-only data."""

from __future__ import annotations

from datetime import date

import pytest

from features.errors import InputError
from features.settings import Settings
from pipelines import train
from training import registry

pytestmark = pytest.mark.slow


def test_backtest_scores_champions_and_baselines_on_the_real_future(trained_home):
    settings, _ = trained_home
    report = train.backtest(settings, date(2017, 10, 1), 28, ["churn", "customer_value"])
    assert report["churn"]["model"]["roc_auc"] > 0.6
    assert {"recency", "rfm_quintiles", "btyd_p_no_order"} <= set(report["churn"]["baselines"])
    assert "normalized_gini" in report["customer_value"]["model"]
    assert report["churn"]["customers"] > 200


def test_backtest_without_enough_data_after_the_date_says_what_is_missing(trained_home):
    settings, _ = trained_home
    with pytest.raises(InputError, match="needs orders until 2018-01-17"):
        train.backtest(settings, date(2017, 12, 20), 28, ["churn"])


def test_orders_only_data_trains_with_the_features_it_has(orders_only_home: Settings):
    settings = orders_only_home
    result = train.train(settings, ["churn"], date(2017, 10, 1), 28, trials=0)[0]
    assert result.test_metrics["roc_auc"] > 0.6
    registry.configure(settings)
    bundle, _ = registry.load_bundle("churn")
    assert "categories_90d" in bundle.feature_names  # present, null for every customer


def test_a_backtest_before_the_champions_training_data_ends_is_refused_as_leakage(trained_home, tmp_path):
    from tests.conftest import copy_home

    settings = copy_home(trained_home[0], tmp_path / "home")
    with pytest.raises(InputError, match="trained on orders up to 2017-10-01, after --as-of 2017-09-03"):
        train.backtest(settings, date(2017, 9, 3), 28, ["churn"])
    report = train.backtest(settings, date(2017, 9, 3), 28, ["churn"], allow_leakage=True)
    assert report["churn"]["leakage"].endswith("optimistic")


def test_a_rolling_origin_backtest_trains_and_tests_at_each_origin_and_registers_nothing(
    trained_home, tmp_path
):
    from tests.conftest import copy_home

    settings = copy_home(trained_home[0], tmp_path / "home")
    registry.configure(settings)
    versions_before = [v.version for v in registry.versions("churn")]
    table = train.rolling_backtest(settings, date(2017, 11, 5), 28, ["churn"], origins=2, every_days=28)
    assert sorted(set(table.origin)) == [date(2017, 10, 8), date(2017, 11, 5)]
    assert {"model", "recency", "btyd_p_no_order"} <= set(table.scorer) and set(table.metric) == {"roc_auc"}
    summary = train.summarize_rolling(table)
    model = summary[summary.scorer == "model"].iloc[0]
    assert model.origins == 2 and model["min"] <= model["mean"] <= model["max"]
    assert [v.version for v in registry.versions("churn")] == versions_before
