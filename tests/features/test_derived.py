"""Derived tables: written by every import, equal to what the canonical tables say, portable to Spark."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from features.customer_features import DataCapabilities, feature_sql
from features.customer_features import spark_sql as feature_spark_sql
from features.data.derived import register_derived_views
from features.data.derived import spark_sql as derived_spark_sql
from features.data.duck import connect, register_tables
from features.data.schema import DERIVED_TABLES
from features.data.store import DataStore
from features.settings import Settings
from features.snapshots import capabilities, register_canonical_views
from pipelines.import_data import import_file

CUTOFFS = (date(2017, 2, 1), date(2017, 7, 1), date(2017, 10, 1), date(2018, 1, 5))


def features(con: duckdb.DuckDBPyConnection, cutoffs=CUTOFFS) -> pd.DataFrame:
    values = ", ".join(f"('{d}'::TIMESTAMPTZ)" for d in cutoffs)
    con.execute(f"CREATE OR REPLACE TEMP TABLE cutoffs AS SELECT * FROM (VALUES {values}) v(as_of)")
    return con.execute(feature_sql(capabilities(con))).df()


def stored_and_computed(settings: Settings) -> tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection]:
    """Connections reading the derived tables from the live version's files, and computing them."""
    version = DataStore(settings.data_dir).live_version()
    stored = connect()
    register_canonical_views(stored, version)
    computed = connect()
    register_tables(computed, version)
    register_derived_views(computed, None)
    return stored, computed


def test_an_import_writes_every_derived_table(cj_slice_home: Settings):
    version = DataStore(cj_slice_home.data_dir).live_version()
    for table in DERIVED_TABLES:
        assert list((version / table).glob("*.parquet")), table


def test_stored_derived_tables_give_the_features_computed_from_the_lines(cj_slice_home: Settings):
    stored, computed = stored_and_computed(cj_slice_home)
    pd.testing.assert_frame_equal(features(stored), features(computed), rtol=1e-9)


def test_derived_files_an_older_version_wrote_without_a_column_are_computed_instead(fresh_cj_home: Settings):
    version = DataStore(fresh_cj_home.data_dir).live_version()
    expected = features(stored_and_computed(fresh_cj_home)[1])
    for path in (version / "order_facts").glob("*.parquet"):
        older = pd.read_parquet(path).drop(columns="weekday")
        path.unlink()  # a hard link shared with the other versions: replace it, do not write through it
        older.to_parquet(path)
    stored, _ = stored_and_computed(fresh_cj_home)
    pd.testing.assert_frame_equal(features(stored), expected, rtol=1e-9)


def test_an_import_that_adds_orders_rewrites_the_derived_tables(fresh_cj_home: Settings, tmp_path: Path):
    stored, _ = stored_and_computed(fresh_cj_home)
    customer = stored.execute("SELECT min(customer_id) FROM orders").fetchall()[0][0]
    before = features(stored).set_index(["event_timestamp", "customer_id"])
    extra = tmp_path / "orders.csv"
    extra.write_text(f"customer_id,order_id,ordered_at,amount\n{customer},extra-1,2018-01-03 10:00:00,12.5\n")
    import_file(fresh_cj_home, extra, [])

    stored, computed = stored_and_computed(fresh_cj_home)
    assert stored.execute("SELECT count(*) FROM order_facts WHERE order_id = 'extra-1'").fetchall() == [(1,)]
    assert (
        stored.execute("SELECT count(*) FROM order_facts").fetchall()
        == stored.execute("SELECT count(*) FROM orders").fetchall()
    )
    after = features(stored)
    pd.testing.assert_frame_equal(after, features(computed), rtol=1e-9)
    after = after.set_index(["event_timestamp", "customer_id"])
    key = (pd.Timestamp("2018-01-05", tz="UTC"), customer)
    assert after.loc[key, "orders_7d"] == before.loc[key, "orders_7d"] + 1
    assert after.loc[key, "days_since_last_order"] == pytest.approx(2 - 10 / 24)


CAPABILITIES = {
    "everything": DataCapabilities(True, True, True, True, True, True),
    "orders only": DataCapabilities(False, False, False, False, False, False),
}


@pytest.mark.parametrize("caps", CAPABILITIES.values(), ids=CAPABILITIES.keys())
def test_the_feature_query_transpiles_to_spark(caps: DataCapabilities):
    spark = feature_spark_sql(caps).upper()
    assert "MAX_BY(" in spark or not caps.lines
    for duckdb_only in ("ARG_MAX(", "EPOCH(", "ISODOW("):
        assert duckdb_only not in spark, duckdb_only


@pytest.mark.parametrize("table", ["category_days", *DERIVED_TABLES])
def test_the_derived_tables_transpile_to_spark(table: str):
    spark = derived_spark_sql(table).upper()
    for duckdb_only in ("ARG_MAX(", "EPOCH(", "ISODOW("):
        assert duckdb_only not in spark, duckdb_only


@pytest.fixture(scope="module")
def two_years(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """400 synthetic customers over two years: 365-day windows that cut the history."""
    from features.data.synth import generate

    settings = Settings.resolve(tmp_path_factory.mktemp("two_years"))
    generate(DataStore(settings.data_dir), 400, seed=3, start=date(2023, 1, 1), days=730)
    return settings


def by_hand(settings: Settings, as_of: date) -> pd.DataFrame:
    """Window features recomputed with pandas from the canonical orders, lines and products."""
    tables = connect()
    register_tables(tables, DataStore(settings.data_dir).live_version())
    orders = tables.execute("SELECT customer_id, ordered_at FROM orders").df()
    lines = tables.execute(
        "SELECT customer_id, ordered_at, product_id, amount, department, category "
        "FROM order_lines JOIN products USING (product_id)"
    ).df()
    cutoff = pd.Timestamp(as_of, tz="UTC")
    orders, lines = orders[orders.ordered_at < cutoff], lines[lines.ordered_at < cutoff]
    lines["day"] = lines.ordered_at.dt.floor("D")
    year, quarter = cutoff - pd.Timedelta(days=365), cutoff - pd.Timedelta(days=90)
    recent_orders = orders[orders.ordered_at >= year]
    weeks = recent_orders.ordered_at.dt.floor("D") - pd.to_timedelta(
        recent_orders.ordered_at.dt.dayofweek, "D"
    )
    in_year, in_quarter = lines[lines.day >= year], lines[lines.day >= quarter]
    spend = in_year.groupby(["customer_id", "department"]).amount.sum().groupby("customer_id")

    def top3(values: pd.Series) -> float:
        return values.sort_values(ascending=False).iloc[:3].sum()

    def first_days(key: str) -> pd.Series:
        first = lines.groupby(["customer_id", key]).day.min()
        return (first >= quarter).groupby("customer_id").sum()

    frame = pd.DataFrame(
        {
            "active_weeks_365d": weeks.groupby(recent_orders.customer_id).nunique(),
            "categories_90d": in_quarter.groupby("customer_id").category.nunique(),
            "categories_365d": in_year.groupby("customer_id").category.nunique(),
            "departments_90d": in_quarter.groupby("customer_id").department.nunique(),
            "departments_365d": in_year.groupby("customer_id").department.nunique(),
            "top_department_share_365d": spend.max() / spend.sum(),
            "top3_department_share_365d": spend.apply(top3) / spend.sum(),
            "new_products_90d": first_days("product_id"),
            "new_categories_90d": first_days("category"),
        },
        index=pd.Index(orders.customer_id.unique(), name="customer_id"),
    )
    counts = [c for c in frame.columns if "share" not in c]
    frame[counts] = frame[counts].fillna(0).astype(float)
    return frame.sort_index()


@pytest.mark.parametrize("as_of", [date(2024, 3, 1), date(2024, 12, 28)])
def test_windows_that_cut_a_long_history_match_a_hand_computation(two_years: Settings, as_of: date):
    con = connect()
    register_canonical_views(con, DataStore(two_years.data_dir).live_version())
    built = features(con, [as_of]).set_index("customer_id").sort_index()
    expected = by_hand(two_years, as_of)
    assert len(built) == len(expected) > 200
    pd.testing.assert_frame_equal(built[expected.columns], expected, check_dtype=False, rtol=1e-9)


def test_cutoffs_built_in_several_passes_equal_one_pass(cj_slice_home: Settings, tmp_path: Path):
    from features.dated_snapshots import DatedSnapshots
    from features.snapshots import build_snapshots

    stored, _ = stored_and_computed(cj_slice_home)
    together = build_snapshots(stored, list(CUTOFFS), tmp_path / "one")
    apart = build_snapshots(stored, list(CUTOFFS), tmp_path / "many", rows_per_pass=1)
    assert together == apart
    for cutoff in CUTOFFS:
        pd.testing.assert_frame_equal(
            DatedSnapshots(tmp_path / "one").read(cutoff),
            DatedSnapshots(tmp_path / "many").read(cutoff),
            rtol=1e-12,
        )


def test_derived_tables_written_in_parts_of_whole_customers_equal_one_part(
    cj_slice_home: Settings, tmp_path: Path
):
    import shutil

    from features.data.derived import write_derived_tables

    live = DataStore(cj_slice_home.data_dir).live_version()
    one, three = tmp_path / "one", tmp_path / "three"
    for version in (one, three):
        shutil.copytree(live, version)
    write_derived_tables(connect(), one, parts=1)
    write_derived_tables(connect(), three, parts=3)
    for name, table in DERIVED_TABLES.items():
        assert sorted(p.name for p in (three / name).iterdir()) == [f"part-{k}.parquet" for k in range(3)]
        key = list(table.key)
        want = pd.read_parquet(one / name).sort_values(key, ignore_index=True)
        got = pd.read_parquet(three / name).sort_values(key, ignore_index=True)
        assert len(got) > 0
        # running sums of doubles may differ in the last bit with the order DuckDB adds them in
        pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-9, obj=name)
    stored = connect()
    register_canonical_views(stored, three)
    _, computed = stored_and_computed(cj_slice_home)
    pd.testing.assert_frame_equal(features(stored), features(computed), rtol=1e-9)
