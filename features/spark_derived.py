"""Derived tables written by Spark: the same queries and the same files as `features.data.derived`.

`write_derived_tables` is the Spark twin of `features.data.derived.write_derived_tables`, called with
a store version inside the transaction that wrote its orders. Each query is the DuckDB one translated
by `features.data.dialects.to_spark`, its columns cast to the derived table's canonical types; each
table is written into `<version>/<table>/` as Parquet part files and read back by the tables computed
after it, as DuckDB does. The intermediate `category_days` is kept by Spark (memory, then disk) and
released at the end.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.storagelevel import StorageLevel

from features.data.derived import DERIVED_SQL, derived_sql
from features.data.dialects import to_spark
from features.data.schema import ALL_TABLES, DERIVED_TABLES
from features.data.shop import shop_time_zone
from features.spark_session import register_tables


def write_derived_tables(spark: SparkSession, version: Path) -> None:
    """Compute every derived table from the canonical tables of `version` with Spark and write it into
    `version` (earlier derived files there, hard links of the previous version's, are replaced)."""
    register_tables(spark, version, ALL_TABLES)
    zone = shop_time_zone(version)
    kept = []
    for name in DERIVED_SQL:
        if name not in DERIVED_TABLES:
            frame = spark.sql(to_spark(derived_sql(name, zone))).persist(StorageLevel.MEMORY_AND_DISK)
            frame.createOrReplaceTempView(name)
            kept.append(frame)
            continue
        folder = version / name
        shutil.rmtree(folder, ignore_errors=True)
        typed = ", ".join(f"CAST({c.name} AS {c.sql_type}) AS {c.name}" for c in DERIVED_TABLES[name].columns)
        spark.sql(to_spark(f"SELECT {typed} FROM ({derived_sql(name, zone)})")).write.option(
            "compression", "zstd"
        ).parquet(str(folder))
        for extra in folder.iterdir():  # Spark's _SUCCESS marker and checksum files
            if extra.suffix != ".parquet":
                extra.unlink()
        spark.read.parquet(str(folder)).createOrReplaceTempView(name)
    for frame in kept:
        frame.unpersist()
