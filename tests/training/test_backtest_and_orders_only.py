"""Backtests against what really happened, and training on orders-only data."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from features.errors import InputError
from features.settings import Settings
from pipelines import train
from pipelines.import_data import import_file
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


def test_orders_only_data_trains_with_the_features_it_has(tmp_path, cj_slice_dir):
    orders = (
        duckdb.connect()
        .execute(
            f"""SELECT basket_id AS receipt, household_id AS client, min(transaction_timestamp) AS placed,
                   sum(sales_value) AS total
            FROM read_parquet('{cj_slice_dir}/transactions.parquet') GROUP BY ALL"""
        )
        .df()
    )
    path = tmp_path / "orders.csv"
    orders.to_csv(path, index=False)
    settings = Settings.resolve(tmp_path / "home")
    import_file(
        settings, path, ["order_id=receipt", "customer_id=client", "ordered_at=placed", "amount=total"]
    )
    result = train.train(settings, ["churn"], date(2017, 10, 1), 28, trials=0)[0]
    assert result.test_metrics["roc_auc"] > 0.6
    registry.configure(settings)
    bundle, _ = registry.load_bundle("churn")
    assert "categories_90d" in bundle.feature_names  # present, null for every customer
