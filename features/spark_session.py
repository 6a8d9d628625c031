"""Apache Spark sessions set up the way Tierwise's SQL expects, and a store version's tables as Spark views.

The Spark engine runs the same SQL as DuckDB (`features.data.dialects.to_spark`), so the session must
agree with DuckDB's on what that SQL means: the time zone is UTC (timestamps are instants, days are UTC
days), Parquet timestamps are written as microseconds like DuckDB's (Spark's default is INT96), and the
month folders of partitioned tables stay text (`month=2017-01` is not a number or a date).

`settings.spark_master` picks the cluster: `local[*]` (this machine's cores, the default) or a
cluster's URL (`spark://host:7077`, `yarn`, `k8s://...`). Everything else comes from Spark's own
configuration (`SPARK_CONF_DIR`/`spark-defaults.conf`); only `REQUIRED_CONF`, which the SQL depends
on, and `ARROW_CONF`, how results reach pandas, are always set here, and in local mode the driver's
memory, scratch folder and Python.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from features.data.derived import DERIVED_SQL, spark_sql
from features.data.dialects import to_spark
from features.data.duck import empty_table_sql, stored_table_sql
from features.data.schema import ALL_TABLES
from features.data.shop import shop_time_zone
from features.errors import InputError
from features.settings import Settings

#: Settings the SQL's meaning depends on; always applied.
REQUIRED_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
    "spark.sql.ansi.enabled": "true",
}

#: Results the driver hands to pandas (`toPandas`: training labels, scoring's peers) cross as Arrow
#: batches, not as pickled rows. Spark's default is off. Measured on the labels of a 1M-customer
#: training run (5.5M rows): 217 s to 141 s, and the peak from 4.5 GB in Python plus 4.2 GB in the
#: JVM to 1.2 GB plus 3.0 GB. Spark falls back to rows for a type Arrow cannot carry.
ARROW_CONF = {"spark.sql.execution.arrow.pyspark.enabled": "true"}

#: Memory of the driver in local mode, where it is also the only executor (Spark's default is 1g).
DRIVER_MEMORY_ENV = "TIERWISE_SPARK_DRIVER_MEMORY"
DEFAULT_DRIVER_MEMORY = "6g"

#: Shuffle partitions per core in local mode. Spark's default of 200 was made for clusters: on one
#: machine each shuffle then writes and schedules 200 small tasks per stage.
LOCAL_SHUFFLE_PARTITIONS_PER_CORE = 4

LOG_CONFIG = Path(__file__).with_name("spark_log4j2.properties")
#: The folder holding Tierwise's packages, which local Python workers import.
CODE_ROOT = Path(__file__).resolve().parents[1]


def spark_session(settings: Settings) -> SparkSession:
    """The process's Spark session for `settings.spark_master` (created on first use; Spark keeps one
    per process, so later calls return it with the SQL settings applied again).

    Raises:
        InputError: no Java to start Spark with.
    """
    if not os.environ.get("JAVA_HOME") and shutil.which("java") is None:
        raise InputError(
            "the Spark engine needs Java 17 (Debian: apt-get install openjdk-17-jre-headless) or JAVA_HOME"
        )
    builder = SparkSession.builder.master(settings.spark_master).appName("tierwise")
    if settings.spark_master.startswith("local"):
        scratch = settings.spark_dir / "scratch"
        scratch.mkdir(parents=True, exist_ok=True)
        builder = (
            builder.config("spark.driver.memory", os.environ.get(DRIVER_MEMORY_ENV, DEFAULT_DRIVER_MEMORY))
            .config(
                "spark.sql.shuffle.partitions", str(LOCAL_SHUFFLE_PARTITIONS_PER_CORE * (os.cpu_count() or 1))
            )
            .config("spark.local.dir", str(scratch))
            .config("spark.ui.enabled", "false")
        )
        # Python workers (the pandas steps) run this Python with this code, not whatever is on PATH.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.config("spark.executorEnv.PYTHONPATH", str(CODE_ROOT))
    builder = builder.config("spark.ui.showConsoleProgress", "false").config(
        "spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={LOG_CONFIG.as_uri()}"
    )
    session = builder.getOrCreate()
    for key, value in {**REQUIRED_CONF, **ARROW_CONF}.items():
        session.conf.set(key, value)
    return session


def register_tables(spark: SparkSession, version: Path | None, tables: Iterable[str]) -> None:
    """Temporary views named like canonical `tables` over one store version; a table the version
    lacks is empty with its canonical columns (as `features.data.duck.register_tables` for DuckDB)."""
    for table in tables:
        canonical_frame(spark, version, table).createOrReplaceTempView(table)


def canonical_frame(spark: SparkSession, version: Path | None, table: str) -> DataFrame:
    """Canonical `table` of one store version; empty with its canonical columns if the version lacks it."""
    folder = version / table if version is not None else None
    if folder is not None and any(folder.rglob("*.parquet")):
        return spark.read.parquet(str(folder))
    return spark.sql(to_spark(f"SELECT * FROM {empty_table_sql(table)}"))


def register_canonical_views(spark: SparkSession, version: Path | None) -> None:
    """Temporary views named like the canonical and derived tables of one store version (what the SQL
    reads), as `features.snapshots.register_canonical_views` makes them for DuckDB: a table the version
    lacks is empty with its canonical columns; a derived table it lacks (or holds in an older layout)
    is computed from the canonical views with the same SQL."""
    register_tables(spark, version, ALL_TABLES)
    zone = shop_time_zone(version)
    for name in DERIVED_SQL:
        if stored_table_sql(version, name) is not None:
            frame = spark.read.parquet(str(version / name))
        else:
            frame = spark.sql(spark_sql(name, zone))
        frame.createOrReplaceTempView(name)
