"""Feature snapshots computed by Spark: the same query and the same files as `features.snapshots`.

The query is the DuckDB one in Spark's dialect (`features.customer_features.spark_sql`), over views of
the same store version (`features.spark_session.register_canonical_views`). Spark writes a folder of
part files; each cutoff's rows are sent to one task, so each cutoff becomes one file, which is then
renamed into place as `<date>.parquet` (`features.files.write_atomically`): the layout Feast and every
reader of `features.snapshots` expect, and a reader never sees half a snapshot.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from pathlib import Path

import pyarrow.parquet as pq
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from features.customer_features import DataCapabilities, spark_sql
from features.data.dialects import to_spark
from features.dated_snapshots import DatedSnapshots
from features.files import write_atomically
from features.snapshots import PERIOD_SQL, ROWS_PER_PASS, DataPeriod, capabilities_from, period_from

#: Column that splits a pass's rows into one folder per cutoff (dropped from the files).
CUTOFF_COLUMN = "tierwise_cutoff"


def capabilities(spark: SparkSession) -> DataCapabilities:
    """What the registered dataset provides (`features.snapshots.capabilities_from`)."""
    return capabilities_from(lambda sql: not spark.sql(to_spark(sql)).isEmpty())


def data_period(spark: SparkSession) -> DataPeriod:
    return period_from(*spark.sql(to_spark(PERIOD_SQL)).first())


def build_snapshots(
    spark: SparkSession,
    cutoffs: list[date],
    folder: Path,
    caps: DataCapabilities | None = None,
    rows_per_pass: int = ROWS_PER_PASS,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[date, int]:
    """Compute features for `cutoffs` on Spark and write one snapshot file per cutoff, as
    `features.snapshots.build_snapshots` does (same passes, same files). Returns rows per cutoff."""
    caps = caps or capabilities(spark)
    customers = spark.table("customers").count()
    per_pass = max(1, rows_per_pass // max(1, customers))
    folder.mkdir(parents=True, exist_ok=True)
    rows: dict[date, int] = {}
    for first in range(0, len(cutoffs), per_pass):
        rows |= _build_pass(spark, cutoffs[first : first + per_pass], folder, caps)
        if on_progress:
            on_progress(len(rows), len(cutoffs))
    return rows


def _build_pass(
    spark: SparkSession, cutoffs: list[date], folder: Path, caps: DataCapabilities
) -> dict[date, int]:
    midnights = [(datetime.combine(day, time(), tzinfo=UTC),) for day in cutoffs]
    spark.createDataFrame(midnights, "as_of TIMESTAMP").createOrReplaceTempView("cutoffs")
    features = spark.sql(spark_sql(caps))
    staging = folder / f".spark-{uuid.uuid4().hex}"
    try:
        (
            features.withColumn(CUTOFF_COLUMN, F.date_format("event_timestamp", "yyyy-MM-dd"))
            .repartition(CUTOFF_COLUMN)
            .sortWithinPartitions(CUTOFF_COLUMN, "customer_id")
            .write.partitionBy(CUTOFF_COLUMN)
            .parquet(str(staging))
        )
        return {
            cutoff: _move_into_place(staging, cutoff, DatedSnapshots(folder).path(cutoff))
            for cutoff in cutoffs
        }
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _move_into_place(staging: Path, cutoff: date, target: Path) -> int:
    """Rename the one file Spark wrote for `cutoff` to `target`; returns its rows."""
    parts = sorted((staging / f"{CUTOFF_COLUMN}={cutoff.isoformat()}").glob("*.parquet"))
    if len(parts) != 1:
        raise RuntimeError(f"Spark wrote {len(parts)} files for cutoff {cutoff}, expected one")
    write_atomically(target, lambda partial: os.replace(parts[0], partial))
    return pq.read_metadata(target).num_rows
