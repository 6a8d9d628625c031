"""The import's row checks and order fingerprints run on Spark as on DuckDB: the same SQL, translated.

Every row gets the same reason (or none) and the same typed values; every order the same fingerprint,
so an import on either engine recognises the orders the other imported.
"""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest
from pyspark.sql.types import LongType, StringType, StructField, StructType

from features.data.dialects import to_spark
from features.data.importer import candidate_orders_sql
from features.data.validate import typed_select
from features.settings import Settings
from features.spark_session import spark_session
from tests.conftest import CJ_SLICE
from tests.features.test_quarantine import BAD_LINES, GOOD, HEADER

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("java")]

NOW_SQL = "'2024-06-01T00:00:00+00:00'::TIMESTAMPTZ"
#: Values the checks read in more than one way: offsets, fractions, blanks, NaN, infinity, padding.
MORE_LINES = [
    "c4,o20,2024-03-01T10:00:00Z,1.00,p1,1",
    "c4,o21,2024-03-01 10:00:00+02:00,1.00,p1,1",
    "c4,o22,2024-03-01 10:00:00.123456,1.00,p1,1",
    "c4,o23,2024-03-01,1.00,p1,1",
    "c4,o24, 2024-03-01 10:00:00 , 7.25 ,p1, 3 ",
    "c4,o25,2024-03-01 10:00:00,NaN,p1,1",
    "c4,o26,2024-03-01 10:00:00,inf,p1,1",
    "c4,o27,2024-03-01 10:00:00,1.00,p1,-inf",
    "c4,o28,2024-03-01 10:00:00,-3.5,p1,",
    "c4,o29,2024-03-31 02:30:00,1.00,p1,1",
]
LOCAL_LINES = [
    "c5,o30,01/03/2024 10:00,2.00,p1,1",
    "c5,o31,31/03/2024 02:30,2.00,p1,1",
    "c5,o32,2024-03-01,2.00,p1,1",
]


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    return spark_session(Settings.resolve(tmp_path_factory.mktemp("spark_import")))


def staged(lines: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame([line.split(",") for line in lines], columns=HEADER.split(","))
    frame.insert(0, "source_line", range(2, len(frame) + 2))
    return frame.where(frame != "", None)


def on_duckdb(frame: pd.DataFrame, sql: str) -> pd.DataFrame:
    con = duckdb.connect()
    con.register("staged", frame)
    return con.execute(sql).df()


def on_spark(spark, frame: pd.DataFrame, sql: str, schema: StructType | None = None) -> pd.DataFrame:
    spark.createDataFrame(frame, schema=schema).createOrReplaceTempView("staged")
    return spark.sql(to_spark(sql)).toArrow().to_pandas()


def as_utc(values: pd.Series) -> pd.Series:
    values = pd.to_datetime(values)
    return values.dt.tz_convert("UTC") if values.dt.tz is not None else values.dt.tz_localize("UTC")


def assert_same_rows(duck: pd.DataFrame, spark: pd.DataFrame, key: str) -> None:
    duck, spark = (f.sort_values(key).reset_index(drop=True) for f in (duck, spark))
    assert spark.columns.tolist() == duck.columns.tolist()
    for column in duck.columns:
        left, right = duck[column], spark[column]
        if pd.api.types.is_datetime64_any_dtype(left) or pd.api.types.is_datetime64_any_dtype(right):
            left, right = as_utc(left), as_utc(right)
        if pd.api.types.is_float_dtype(left):
            assert (
                right.astype(float).equals(left.astype(float))
                or (((right - left).abs() <= 1e-9 * left.abs()) | (left.isna() & right.isna())).all()
            ), column
            continue
        assert (
            right.astype(object).where(right.notna(), None).tolist()
            == left.astype(object).where(left.notna(), None).tolist()
        ), column


TEXT = StructType(
    [StructField("source_line", LongType())] + [StructField(c, StringType()) for c in HEADER.split(",")]
)


@pytest.mark.parametrize(
    ("lines", "zone", "timestamp_format"),
    [
        (GOOD + list(BAD_LINES.values()) + MORE_LINES, "UTC", None),
        (GOOD + list(BAD_LINES.values()) + MORE_LINES, "Europe/Berlin", None),
        (LOCAL_LINES, "America/New_York", "%d/%m/%Y %H:%M"),
    ],
)
def test_every_row_gets_the_same_reason_and_values(spark, lines, zone, timestamp_format):
    sql = typed_select(
        "staged",
        dict.fromkeys(HEADER.split(","), "VARCHAR"),
        has_lines=True,
        now_sql=NOW_SQL,
        timezone=zone,
        timestamp_format=timestamp_format,
    )
    frame = staged(lines)
    duck = on_duckdb(frame, sql)
    assert duck["reason"].notna().any() or timestamp_format
    assert_same_rows(duck, on_spark(spark, frame, sql, TEXT), "source_line")


def cj_lines() -> pd.DataFrame:
    return (
        duckdb.connect()
        .execute(
            f"""SELECT file_row_number + 1 AS source_line, basket_id AS order_id, household_id AS customer_id,
                   transaction_timestamp AS ordered_at, sales_value AS amount, product_id, quantity,
                   retail_disc + coupon_disc + coupon_match_disc AS discount, store_id
            FROM read_parquet('{CJ_SLICE}/transactions.parquet', file_row_number = true)"""
        )
        .df()
    )


def fingerprints_sql(frame: pd.DataFrame, has_lines: bool) -> str:
    con = duckdb.connect()
    con.register("staged", frame)
    fields = {
        name: kind for name, kind, *_ in con.execute("DESCRIBE staged").fetchall() if name != "source_line"
    }
    typed = typed_select("staged", fields, has_lines=has_lines, now_sql=NOW_SQL)
    return candidate_orders_sql(has_lines, f"({typed})")


def test_orders_from_lines_get_the_same_fingerprints(spark):
    frame = cj_lines()
    sql = fingerprints_sql(frame, has_lines=True)
    assert_same_rows(on_duckdb(frame, sql), on_spark(spark, frame, sql), "order_id")


def test_orders_without_lines_get_the_same_fingerprints(spark):
    frame = (
        cj_lines()
        .groupby("order_id", as_index=False)
        .agg(
            source_line=("source_line", "min"),
            customer_id=("customer_id", "first"),
            ordered_at=("ordered_at", "first"),
            amount=("amount", "sum"),
            discount=("discount", "sum"),
            store_id=("store_id", "first"),
        )
    )
    sql = fingerprints_sql(frame, has_lines=False)
    assert_same_rows(on_duckdb(frame, sql), on_spark(spark, frame, sql), "order_id")
