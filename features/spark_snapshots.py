"""Feature snapshots computed by Spark: the same query and the same files as `features.snapshots`.

The query is the DuckDB one in Spark's dialect (`features.customer_features.spark_sql`), over views of
the same store version (`features.spark_session.register_canonical_views`). Each cutoff's rows become
one file renamed into place as `<date>.parquet` (`features.spark_files.write_file_per_key`): the
layout Feast and every reader of `features.snapshots` expect, and a reader never sees half a snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from features.customer_features import DataCapabilities, spark_sql
from features.data.dialects import to_spark
from features.dated_snapshots import DatedSnapshots
from features.snapshots import (
    PERIOD_SQL,
    ROWS_PER_PASS,
    DataPeriod,
    capabilities_from,
    in_passes,
    period_from,
)
from features.spark_files import write_file_per_key

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
    folder.mkdir(parents=True, exist_ok=True)
    return in_passes(
        cutoffs,
        customers,
        rows_per_pass,
        lambda chosen: _build_pass(spark, chosen, folder, caps),
        on_progress,
    )


def _build_pass(
    spark: SparkSession, cutoffs: list[date], folder: Path, caps: DataCapabilities
) -> dict[date, int]:
    midnights = [(datetime.combine(day, time(), tzinfo=UTC),) for day in cutoffs]
    spark.createDataFrame(midnights, "as_of TIMESTAMP").createOrReplaceTempView("cutoffs")
    features = spark.sql(spark_sql(caps))
    keyed = features.withColumn(CUTOFF_COLUMN, F.date_format("event_timestamp", "yyyy-MM-dd"))
    targets = {cutoff.isoformat(): DatedSnapshots(folder).path(cutoff) for cutoff in cutoffs}
    rows = write_file_per_key(keyed, CUTOFF_COLUMN, targets, folder, ["customer_id"])
    return {cutoff: rows[cutoff.isoformat()] for cutoff in cutoffs}
