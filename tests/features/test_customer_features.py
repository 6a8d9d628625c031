"""Customer features: point in time, hand-checkable, and present only where the data has the inputs."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb
import pandas as pd
import pytest

from features.catalog import FEATURES, FEATURES_BY_NAME, Needs
from features.customer_features import feature_sql
from features.data.derived import register_derived_views
from features.data.duck import connect
from features.data.store import DataStore
from features.errors import InputError
from features.settings import Settings
from features.snapshots import (
    capabilities,
    check_cutoffs,
    data_period,
    parse_cutoff_range,
    register_canonical_views,
)

AS_OF = date(2017, 10, 1)


def features_at(con: duckdb.DuckDBPyConnection, as_of: date = AS_OF) -> pd.DataFrame:
    con.execute(f"CREATE OR REPLACE TEMP TABLE cutoffs AS SELECT '{as_of}'::TIMESTAMPTZ AS as_of")
    return con.execute(feature_sql(capabilities(con))).df().set_index("customer_id")


@pytest.fixture
def slice_con(cj_slice_home: Settings) -> duckdb.DuckDBPyConnection:
    con = connect()
    register_canonical_views(con, DataStore(cj_slice_home.data_dir).live_version())
    return con


def add_order(con: duckdb.DuckDBPyConnection, customer: str, at: str, amount: float = 50.0) -> None:
    """Shadow the orders/lines views with one more order (a new product in a new category), and the
    derived tables with ones computed from those views (the stored ones summarize the imported data)."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE extra_orders AS SELECT * REPLACE (
                'extra-1' AS order_id, '{customer}' AS customer_id, '{at}'::TIMESTAMPTZ AS ordered_at,
                {amount} AS amount, 1 AS lines, 1.0 AS items)
            FROM orders LIMIT 1"""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE extra_lines AS SELECT * REPLACE (
                'extra-1' AS order_id, '{customer}' AS customer_id, '{at}'::TIMESTAMPTZ AS ordered_at,
                'never-seen-product' AS product_id, {amount} AS amount)
            FROM order_lines LIMIT 1"""
    )
    base_orders = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'orders'").fetchall()[0][0]
    source = base_orders.split(" AS ", 1)[1].rstrip(";")
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW orders AS {source} UNION ALL BY NAME SELECT * FROM extra_orders"
    )
    base_lines = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'order_lines'").fetchall()[0][
        0
    ]
    source = base_lines.split(" AS ", 1)[1].rstrip(";")
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW order_lines AS {source} UNION ALL BY NAME SELECT * FROM extra_lines"
    )
    register_derived_views(con, None)


def test_query_columns_are_the_catalog(slice_con):
    columns = list(features_at(slice_con).reset_index().columns)
    assert columns == ["customer_id", "event_timestamp", *(f.name for f in FEATURES)]


def test_one_row_per_customer_with_an_order_before_as_of(slice_con):
    frame = features_at(slice_con)
    expected = slice_con.execute(
        f"SELECT count(DISTINCT customer_id) FROM orders WHERE ordered_at < '{AS_OF}'"
    ).fetchall()
    assert frame.index.is_unique and len(frame) == expected[0][0]


@pytest.mark.parametrize("moment", ["2017-10-01 00:00:00", "2017-10-01 08:30:00", "2017-12-24 10:00:00"])
def test_an_order_at_or_after_as_of_changes_no_feature(slice_con, moment):
    before = features_at(slice_con)
    customer = before.index[0]
    add_order(slice_con, customer, moment)
    after = features_at(slice_con)
    pd.testing.assert_frame_equal(before, after)


def test_an_order_just_before_as_of_changes_the_features(slice_con):
    before = features_at(slice_con)
    customer = before.index[0]
    add_order(slice_con, customer, "2017-09-30 23:59:00")
    after = features_at(slice_con)
    assert after.loc[customer, "orders_7d"] == before.loc[customer, "orders_7d"] + 1
    assert after.loc[customer, "days_since_last_order"] < 0.01
    assert after.loc[customer, "new_products_90d"] == before.loc[customer, "new_products_90d"] + 1
    others = before.index[1:]
    pd.testing.assert_frame_equal(before.loc[others], after.loc[others])


def hand_computed(
    transactions: pd.DataFrame, products: pd.DataFrame, redemptions: pd.DataFrame, customer: int
) -> dict[str, float | str]:
    """Features recomputed from the raw Complete Journey files with pandas, independently of the SQL.
    The shop's time zone is UTC here (the fixture's import), so local habits read UTC clocks."""
    as_of = pd.Timestamp(AS_OF)
    tx = transactions[(transactions.household_id == customer) & (transactions.transaction_timestamp < as_of)]
    tx = tx.merge(products, on="product_id", how="left")
    baskets = tx.groupby("basket_id").agg(at=("transaction_timestamp", "first"), spend=("sales_value", "sum"))
    baskets = baskets.sort_values("at")
    age = (as_of - baskets["at"]).dt.total_seconds() / 86400
    last_year = baskets[age <= 365]
    line_age = (as_of - tx.transaction_timestamp).dt.total_seconds() / 86400
    year, recent = tx[line_age <= 365], tx[line_age <= 90]
    first_buy = tx.groupby("product_id")["transaction_timestamp"].min().dt.normalize()
    first_category = tx.groupby("product_category")["transaction_timestamp"].min().dt.normalize()
    department_spend = year.groupby("department")["sales_value"].sum()
    discounted = year.retail_disc + year.coupon_disc + year.coupon_match_disc > 0
    hours = last_year["at"].dt.hour.value_counts()
    weekdays = last_year["at"].dt.dayofweek.add(1).value_counts()
    discount = year.retail_disc + year.coupon_disc + year.coupon_match_disc
    redeemed = redemptions[(redemptions.household_id == customer)]
    redeemed = redeemed.drop_duplicates(["coupon_upc", "campaign_id", "redemption_date"])
    redeemed_days = (as_of - pd.to_datetime(redeemed.redemption_date)).dt.total_seconds() / 86400
    return {
        "days_since_last_order": age.min(),
        "orders_90d": float((age <= 90).sum()),
        "spend_365d": last_year["spend"].sum(),
        "interorder_days_mean": baskets["at"].diff().dt.total_seconds().div(86400).mean(),
        "active_weeks_365d": float(last_year["at"].dt.to_period("W-SUN").nunique()),
        "weekend_order_share_365d": (last_year["at"].dt.dayofweek >= 5).mean(),
        "preferred_hour_365d": float(hours[hours == hours.max()].index.min()),
        "preferred_weekday_365d": float(weekdays[weekdays == weekdays.max()].index.min()),
        "top_department_365d": department_spend[department_spend == department_spend.max()].index.min(),
        "categories_90d": float(recent["product_category"].nunique()),
        "categories_365d": float(year["product_category"].nunique()),
        "departments_90d": float(recent["department"].nunique()),
        "new_products_90d": float((first_buy >= as_of - pd.Timedelta(days=90)).sum()),
        "new_categories_90d": float((first_category >= as_of - pd.Timedelta(days=90)).sum()),
        "top_department_share_365d": department_spend.max() / department_spend.sum(),
        "discounted_spend_share_365d": year.loc[discounted, "sales_value"].sum() / year["sales_value"].sum(),
        "private_label_share_365d": year.loc[year.brand == "Private", "sales_value"].sum()
        / year["sales_value"].sum(),
        "discount_rate_365d": discount.sum() / (year["sales_value"].sum() + discount.sum()),
        "coupon_redemptions_365d": float(((redeemed_days > 0) & (redeemed_days <= 365)).sum()),
    }


def test_features_match_values_computed_by_hand_for_four_real_customers(slice_con, cj_slice_dir):
    transactions = pd.read_parquet(cj_slice_dir / "transactions.parquet")
    products = pd.read_parquet(cj_slice_dir / "products.parquet")
    redemptions = pd.read_parquet(cj_slice_dir / "coupon_redemptions.parquet")
    built = features_at(slice_con)
    heavy, light = built["orders_lifetime"].idxmax(), built["orders_lifetime"].idxmin()
    middle = built["orders_lifetime"].sort_values().index[len(built) // 2]
    coupon_user = str(redemptions.household_id.value_counts().idxmax())
    assert built.loc[coupon_user, "coupon_redemptions_365d"] > 0
    for customer in (heavy, middle, light, coupon_user):
        expected = hand_computed(transactions, products, redemptions, int(customer))
        for name, value in expected.items():
            assert built.loc[customer, name] == pytest.approx(value, nan_ok=True), (customer, name)


def test_orders_only_data_has_order_features_and_null_line_features(orders_only_home: Settings):
    home = orders_only_home
    con = connect()
    register_canonical_views(con, DataStore(home.data_dir).live_version())
    frame = features_at(con)
    assert frame["orders_90d"].notna().all() and frame["spend_365d"].gt(0).any()
    for feature in FEATURES:
        if feature.needs in (Needs.LINES, Needs.PRODUCTS, Needs.HOUSEHOLDS, Needs.COUPONS, Needs.STORES):
            assert frame[feature.name].isna().all(), feature.name


def test_as_of_before_the_first_order_is_refused(slice_con):
    with pytest.raises(InputError, match="not after the first order"):
        check_cutoffs([date(2016, 12, 1)], data_period(slice_con))


def test_as_of_long_after_the_data_is_refused(slice_con):
    with pytest.raises(InputError, match="after the last order"):
        check_cutoffs([date(2018, 6, 1)], data_period(slice_con))


def test_cutoff_range_steps_by_days_weeks_and_months():
    assert parse_cutoff_range("2017-03-01:2017-03-15:7d") == [
        date(2017, 3, 1),
        date(2017, 3, 8),
        date(2017, 3, 15),
    ]
    assert parse_cutoff_range("2017-01-31:2017-04-30:1m") == [
        date(2017, 1, 31),
        date(2017, 2, 28),
        date(2017, 3, 31),
        date(2017, 4, 30),
    ]
    assert len(parse_cutoff_range("2017-01-01:2017-12-31:2w")) == 27
    with pytest.raises(InputError, match="FIRST:LAST:STEP"):
        parse_cutoff_range("2017-01-01..2017-02-01")


def test_every_feature_has_a_description_and_a_known_view():
    assert all(
        f.description and f.view in {"rfm", "rhythm", "basket", "price_sensitivity", "habits", "household"}
        for f in FEATURES
    )
    assert FEATURES_BY_NAME["orders_90d"].needs is Needs.ORDERS
    assert datetime and timedelta  # imported for readers of the tests


def test_synthetic_data_yields_every_feature(tmp_path):
    from features.data.synth import generate

    settings = Settings.resolve(tmp_path / "synth")
    generate(DataStore(settings.data_dir), 1_000, seed=5, start=date(2024, 1, 1), days=365)
    con = connect()
    register_canonical_views(con, DataStore(settings.data_dir).live_version())
    caps = capabilities(con)
    assert all((caps.lines, caps.products, caps.discounts, caps.coupons, caps.stores, caps.households))
    frame = features_at(con, date(2024, 10, 1))
    assert len(frame) > 500
    for feature in FEATURES:
        assert frame[feature.name].notna().any(), feature.name


def test_habit_profiles_match_shares_computed_by_hand_and_the_features(cj_slice_home: Settings, cj_slice_dir):
    from pipelines.build_features import habit_profiles

    transactions = pd.read_parquet(cj_slice_dir / "transactions.parquet")
    products = pd.read_parquet(cj_slice_dir / "products.parquet")
    customer = transactions.household_id.value_counts().index[10]
    profiles = habit_profiles(cj_slice_home, AS_OF, [str(customer)]).set_index(["kind", "key"]).share
    as_of = pd.Timestamp(AS_OF)
    tx = transactions[(transactions.household_id == customer) & (transactions.transaction_timestamp < as_of)]
    year = tx[(as_of - tx.transaction_timestamp).dt.total_seconds() / 86400 <= 365]
    weekdays = (
        year.groupby("basket_id")
        .transaction_timestamp.first()
        .dt.dayofweek.add(1)
        .value_counts(normalize=True)
    )
    departments = year.merge(products, on="product_id").groupby("department").sales_value.sum()
    for day, share in weekdays.items():
        assert profiles["weekday", str(day)] == pytest.approx(share)
    for department, spend in departments.items():
        assert profiles["department", department] == pytest.approx(spend / departments.sum())
    assert profiles["weekday"].sum() == pytest.approx(1) and profiles["department"].sum() == pytest.approx(1)
    with connect() as con:
        register_canonical_views(con, DataStore(cj_slice_home.data_dir).live_version())
        features = features_at(con).loc[str(customer)]
    assert profiles["department"].idxmax() == features.top_department_365d
    assert profiles["department"].max() == pytest.approx(features.top_department_share_365d)
