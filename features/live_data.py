"""DuckDB connections (or a Spark session) over a data home: the one way jobs open the imported data.

Every DuckDB connection a job opens spills to the home's `data/.spill` folder (not the working
directory); `open_live_data` also names the live version's canonical and derived tables as views,
so the SQL of features, labels and reports reads `orders`, `order_lines`, … whatever version is live.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb

from features.data.duck import connect
from features.data.store import DataStore
from features.settings import Settings
from features.snapshots import register_canonical_views

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def connect_in_home(settings: Settings) -> duckdb.DuckDBPyConnection:
    """A connection that spills into the home (imports write their own tables through it)."""
    return connect(temp_directory=settings.data_dir / ".spill")


def open_live_data(settings: Settings) -> duckdb.DuckDBPyConnection:
    """A connection with views over the live version of the home's tables (empty tables if none)."""
    con = connect_in_home(settings)
    register_canonical_views(con, DataStore(settings.data_dir).live_version())
    return con


def open_live_data_on_spark(settings: Settings) -> SparkSession:
    """The Spark session (`features.spark_session`) with views over the live version of the home's
    tables, named as in `open_live_data`."""
    from features.spark_session import register_canonical_views, spark_session

    spark = spark_session(settings)
    register_canonical_views(spark, DataStore(settings.data_dir).live_version())
    return spark
