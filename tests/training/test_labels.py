"""Labels: what happened after a cutoff, hand-checked on real customers, never read past the clock."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from features.data.duck import connect
from features.data.store import DataStore
from features.errors import InputError
from features.settings import Settings
from features.snapshots import register_canonical_views
from training.backtest_plan import plan
from training.labels import compute_labels

CUTOFF = date(2017, 7, 1)


@pytest.fixture
def con(cj_slice_home: Settings):
    connection = connect()
    register_canonical_views(connection, DataStore(cj_slice_home.data_dir).live_version())
    return connection


def test_labels_match_the_raw_transactions(con, cj_slice_dir):
    labels = compute_labels(con, [CUTOFF], 30, date(2017, 10, 1), with_categories=True).set_index(
        "customer_id"
    )
    tx = pd.read_parquet(cj_slice_dir / "transactions.parquet")
    start, end = pd.Timestamp(CUTOFF), pd.Timestamp(CUTOFF) + pd.Timedelta(days=30)
    for customer in labels.index[:25]:
        mine = tx[tx.household_id == int(customer)]
        window = mine[(mine.transaction_timestamp >= start) & (mine.transaction_timestamp < end)]
        assert labels.loc[customer, "churn"] == int(window.empty), customer
        assert labels.loc[customer, "value"] == pytest.approx(window.sales_value.sum()), customer


def test_only_customers_with_an_order_before_the_cutoff_are_labelled(con, cj_slice_dir):
    labels = compute_labels(con, [CUTOFF], 30, date(2017, 10, 1), with_categories=True)
    tx = pd.read_parquet(cj_slice_dir / "transactions.parquet")
    before = tx[tx.transaction_timestamp < pd.Timestamp(CUTOFF)].household_id.astype(str).unique()
    assert set(labels.customer_id) == set(before)


def test_a_cutoff_whose_horizon_passes_the_clock_is_refused(con):
    with pytest.raises(InputError, match="outcome is not known yet"):
        compute_labels(con, [date(2017, 9, 15)], 30, date(2017, 10, 1), with_categories=True)


def test_no_training_or_validation_window_reaches_into_the_test_period():
    the_plan = plan(date(2017, 1, 1), date(2017, 10, 1), 28)
    assert the_plan.test.toordinal() + 28 == date(2017, 10, 1).toordinal()
    for cutoff in the_plan.train:
        assert cutoff.toordinal() + 28 <= the_plan.test.toordinal()
    assert max(the_plan.deploy_train).toordinal() + 28 <= date(2017, 10, 1).toordinal()


def test_too_little_history_says_how_much_is_needed():
    with pytest.raises(InputError, match=r"needs orders from at least \d+ days"):
        plan(date(2017, 1, 1), date(2017, 7, 1), 92)


def test_labels_are_the_same_to_the_last_bit_every_time(con):
    first = compute_labels(con, [CUTOFF, date(2017, 8, 1)], 30, date(2017, 10, 1), with_categories=True)
    for _ in range(3):
        again = compute_labels(con, [CUTOFF, date(2017, 8, 1)], 30, date(2017, 10, 1), with_categories=True)
        pd.testing.assert_frame_equal(again, first, check_exact=True)


def test_a_horizon_of_returns_only_is_worth_nothing_not_less(tmp_path):
    from pipelines.import_data import import_file

    orders = pd.DataFrame(
        {
            "order_id": ["o1", "o2", "o3", "o4"],
            "customer_id": ["a", "a", "b", "b"],
            "ordered_at": [
                "2024-01-02T10:00:00",
                "2024-01-20T10:00:00",
                "2024-01-03T10:00:00",
                "2024-01-21T10:00:00",
            ],
            "amount": [50.0, -80.0, 40.0, 25.0],
        }
    )
    path = tmp_path / "orders.csv"
    orders.to_csv(path, index=False)
    settings = Settings.resolve(tmp_path / "home")
    import_file(settings, path, [])
    connection = connect()
    register_canonical_views(connection, DataStore(settings.data_dir).live_version())
    labels = compute_labels(connection, [date(2024, 1, 10)], 30, date(2024, 2, 9), with_categories=False)
    values = dict(zip(labels.customer_id, labels.value, strict=True))
    assert values == {"a": 0.0, "b": 25.0}
