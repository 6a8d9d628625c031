"""The import on Spark: its checks, fingerprints and order files computed by Spark, from the same SQL.

DuckDB stages the source as for any import (its CSV reader decides which lines are malformed) and
writes it once as Parquet into a scratch folder. Spark reads that and runs the import's queries,
translated (`features.data.dialects.to_spark`): the row checks, duplicate and changed orders, the
fingerprints, and the month files of new orders and lines (`features.spark_files.write_file_per_key`).
What the importer's DuckDB connection reads back (new customers, the quarantined rows' numbers and
reasons, products described by the lines) crosses as Parquet in the same folder. See
`features.data.import_engine` for the division of work.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
from pyspark.sql import DataFrame, SparkSession
from pyspark.storagelevel import StorageLevel

from features.data.dialects import to_spark
from features.data.duck import sql_string
from features.data.sources import StagedSource
from features.spark_files import write_file_per_key
from features.spark_session import canonical_frame

#: Each month file is sorted like DuckDB's (`features.data.import_engine.DuckDBImport.write_months`).
MONTH_FILE_ORDER = ["customer_id", "ordered_at", "order_id"]
#: Bytes of a month file's row group as Spark's writer buffers them: small groups, as DuckDB writes
#: (8,192 rows), so an order event reads a customer's history from a few (Spark's default: 128 MB).
MONTH_ROW_GROUP_BYTES = 512 * 1024


class SparkImport:
    """`features.data.import_engine.ImportEngine` on a Spark session; `scratch` is a folder of its own."""

    def __init__(self, spark: SparkSession, con: duckdb.DuckDBPyConnection, scratch: Path) -> None:
        self.spark, self.con, self.scratch = spark, con, scratch
        self._kept: list[DataFrame] = []

    def stage(self, staged: StagedSource) -> None:
        path = self.scratch / "staged.parquet"
        self.con.execute(f"COPY (SELECT * FROM {staged.view}) TO {sql_string(str(path))} (FORMAT parquet)")
        self.spark.read.parquet(str(path)).createOrReplaceTempView(staged.view)

    def canonical(self, version: Path | None, table: str) -> str:
        name = f"{table}_{version.name if version is not None else 'none'}"
        canonical_frame(self.spark, version, table).createOrReplaceTempView(name)
        return name

    def keep(self, name: str, sql: str, *, computed_once: bool = True) -> None:
        frame = self.spark.sql(to_spark(sql))
        if computed_once:
            frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
            self._kept.append(frame)
        frame.createOrReplaceTempView(name)

    def rows(self, sql: str) -> list[tuple]:
        return [tuple(row) for row in self.spark.sql(to_spark(sql)).collect()]

    def write_months(self, sql: str, folder: Path, stem: str) -> None:
        frame = self.spark.sql(to_spark(sql))
        months = sorted(row[0] for row in frame.select("month").distinct().collect())
        targets = {month: folder / f"month={month}" / f"part-{stem}-0.parquet" for month in months}
        for target in targets.values():
            target.parent.mkdir(parents=True, exist_ok=True)
        write_file_per_key(
            frame,
            "month",
            targets,
            staging=folder.parent,
            order=MONTH_FILE_ORDER,
            options={"parquet.block.size": str(MONTH_ROW_GROUP_BYTES)},
        )

    def hand_over(self, name: str) -> str:
        folder = self.scratch / name
        shutil.rmtree(folder, ignore_errors=True)
        self.spark.table(name).write.parquet(str(folder))
        return f"read_parquet({sql_string(str(folder / '*.parquet'))})"

    def release(self) -> None:
        for frame in self._kept:
            frame.unpersist()
        self._kept.clear()
