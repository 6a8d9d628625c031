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


@pytest.mark.parametrize("table", ["line_days", *DERIVED_TABLES])
def test_the_derived_tables_transpile_to_spark(table: str):
    spark = derived_spark_sql(table).upper()
    for duckdb_only in ("ARG_MAX(", "EPOCH(", "ISODOW("):
        assert duckdb_only not in spark, duckdb_only
