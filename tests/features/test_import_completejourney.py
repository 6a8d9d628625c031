"""Importing real Complete Journey data into the canonical tables."""

from __future__ import annotations

import pandas as pd
import pytest

from features.settings import Settings
from pipelines.import_data import import_completejourney
from tests.features.tables import read_table, scalar


def test_slice_import_keeps_every_line_and_basket(cj_slice_home: Settings, cj_slice_dir):
    raw = scalar(
        cj_slice_home, f"SELECT count(*) FROM read_parquet('{cj_slice_dir}/transactions.parquet')", "orders"
    )
    assert scalar(cj_slice_home, "SELECT count(*) FROM {t}", "order_lines") == raw
    assert scalar(cj_slice_home, "SELECT count(DISTINCT order_id) FROM {t}", "orders") == 15_979
    assert scalar(cj_slice_home, "SELECT count(*) FROM {t}", "customers") == 250


def test_order_amount_is_the_sum_of_its_lines(cj_slice_home: Settings):
    orders = read_table(cj_slice_home, "orders").set_index("order_id")
    lines = read_table(cj_slice_home, "order_lines").groupby("order_id")
    assert (orders["amount"] - lines["amount"].sum()).abs().max() < 1e-9
    assert (orders["lines"] == lines.size().reindex(orders.index)).all()


def test_household_attributes_are_attached_where_the_data_has_them(cj_slice_home: Settings):
    customers = read_table(cj_slice_home, "customers")
    assert customers["customer_id"].is_unique
    assert customers["income_band"].notna().sum() == 83


def test_zero_value_lines_are_kept_and_flagged(cj_slice_home: Settings, cj_slice_dir):
    expected = scalar(
        cj_slice_home,
        f"SELECT count(*) FROM read_parquet('{cj_slice_dir}/transactions.parquet') "
        "WHERE sales_value = 0 OR quantity = 0",
        "orders",
    )
    assert expected > 0
    assert scalar(cj_slice_home, "SELECT count(*) FROM {t} WHERE is_zero_value", "order_lines") == expected


def test_timestamps_are_utc_microseconds(cj_slice_home: Settings):
    orders = read_table(cj_slice_home, "orders")
    assert str(orders["ordered_at"].dtype) in {"datetime64[us, UTC]", "datetime64[ns, UTC]"}
    assert orders["ordered_at"].min().isoformat() >= "2017-01-01"


def test_reimporting_the_same_files_adds_nothing(fresh_cj_home: Settings, cj_slice_dir):
    before = scalar(fresh_cj_home, "SELECT count(*) FROM {t}", "order_lines")
    report = import_completejourney(fresh_cj_home, cj_slice_dir)
    assert report.orders_added == 0
    assert report.orders_already_present == 15_979
    assert report.rows_read == report.rows_accepted + report.rows_quarantined
    assert scalar(fresh_cj_home, "SELECT count(*) FROM {t}", "order_lines") == before
    assert scalar(fresh_cj_home, "SELECT count(*) FROM {t}", "imports") == 2


@pytest.mark.slow
def test_full_package_import_has_the_published_counts(home: Settings):
    report = import_completejourney(home)
    assert report.rows_read == 1_469_307
    assert report.rows_quarantined == 0
    assert report.orders_added == 155_848
    assert scalar(home, "SELECT count(*) FROM {t}", "customers") == 2_469
    assert scalar(home, "SELECT count(*) FROM {t}", "products") == 92_331
    assert scalar(home, "SELECT count(*) FROM {t}", "coupon_redemptions") == 2_102
    assert scalar(home, "SELECT count(*) FROM {t} WHERE amount = 0", "order_lines") == 11_226


@pytest.mark.parametrize("table", ["orders", "order_lines"])
def test_order_files_are_ordered_by_customer_so_one_customers_history_is_a_few_row_groups(
    cj_slice_home: Settings, table: str
):
    files = sorted((cj_slice_home.data_dir / "tables" / table).rglob("*.parquet"))
    assert len(files) > 1
    for file in files:
        customers = pd.read_parquet(file, columns=["customer_id"]).customer_id
        assert customers.is_monotonic_increasing, file
