"""DuckDB connections set up the way every Tierwise query expects, and reads of canonical tables.

Also the one place that turns text into SQL: `sql_string` for a literal, `sql_identifier` for a
name. Every value that comes from data, a user option or a path (CSV headers, time zones, formats,
the home folder) goes through one of them, or is bound as a parameter; nothing else interpolates
text into SQL.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from features.data.schema import ALL_TABLES, DERIVED_TABLES

MEMORY_ENV = "TIERWISE_DUCKDB_MEMORY"
DEFAULT_MEMORY_LIMIT = "6GB"


def connect(memory_limit: str | None = None, temp_directory: Path | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection in UTC, so TIMESTAMPTZ values never shift with the host's zone.

    Memory is capped (`TIERWISE_DUCKDB_MEMORY`, default 6GB) so that large imports and feature builds
    spill to `temp_directory` (default: the system's temp folder) instead of growing with the data;
    DuckDB's own defaults are 80% of RAM and a `.tmp` folder in the working directory.
    """
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    limit = memory_limit or os.environ.get(MEMORY_ENV, DEFAULT_MEMORY_LIMIT)
    con.execute(f"SET memory_limit = {sql_string(limit)}")
    spill = temp_directory or Path(tempfile.gettempdir()) / "tierwise-duckdb-spill"
    spill.mkdir(parents=True, exist_ok=True)
    con.execute(f"SET temp_directory = {sql_string(spill.as_posix())}")
    return con


#: DuckDB's optimizer that swaps the sides of a hash join to build its table on the side it
#: estimates smaller.
BUILD_SIDE_OPTIMIZER = "build_side_probe_side"


@contextmanager
def joins_as_written(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Within the block, every hash join builds its table on its right side, as the SQL is written.

    DuckDB estimates the rows of a filtered join poorly and may build on the larger side: at one
    cutoff of 1M customers it built a 12M-row table for the feature query's department join whose
    other side was empty (the department shares took 12 s instead of 15.5 s once built on the right).
    Queries run in the block must put the smaller relation on the right of each join.
    """
    previous = con.execute("SELECT current_setting('disabled_optimizers')").fetchall()[0][0]
    disabled = ", ".join(name for name in (previous, BUILD_SIDE_OPTIMIZER) if name)
    con.execute(f"SET disabled_optimizers = {sql_string(disabled)}")
    try:
        yield
    finally:
        con.execute(f"SET disabled_optimizers = {sql_string(previous)}")


def register_tables(con: duckdb.DuckDBPyConnection, version: Path | None) -> None:
    """Create views named like the canonical tables over one store version (the names queries read)."""
    for table in ALL_TABLES:
        con.execute(f"CREATE OR REPLACE TEMP VIEW {table} AS SELECT * FROM {table_sql(version, table)}")


def stored_table_sql(version: Path | None, table: str) -> str | None:
    """SQL reading derived `table` from its files in `version`; None when the version has none, or
    files an older Tierwise wrote without a column the table has now (the caller computes the table
    from the canonical ones instead; `refresh_derived_tables` rewrites the files)."""
    folder = version / table if version is not None else None
    files = sorted(folder.glob("*.parquet")) if table in DERIVED_TABLES and folder is not None else []
    if not files:
        return None
    import pyarrow.parquet as pq

    if not {column.name for column in DERIVED_TABLES[table].columns} <= set(pq.read_schema(files[0]).names):
        return None
    return f"read_parquet({sql_string(folder.as_posix() + '/*.parquet')})"


def table_sql(version: Path | None, table: str) -> str:
    """SQL table expression for canonical `table` in a store version; empty with the right columns if absent."""
    folder = version / table if version is not None else None
    if folder is None or not any(folder.rglob("*.parquet")):
        return empty_table_sql(table)
    if ALL_TABLES[table].partitioned_by_month:
        return (
            f"read_parquet({sql_string(folder.as_posix() + '/**/*.parquet')}, hive_partitioning = true, "
            "hive_types = {'month': VARCHAR})"
        )
    return f"read_parquet({sql_string(folder.as_posix() + '/*.parquet')})"


def empty_table_sql(table: str) -> str:
    """SQL for an empty relation with the canonical columns of `table` (for a table not yet written)."""
    columns = ", ".join(f"NULL::{c.sql_type} AS {c.name}" for c in ALL_TABLES[table].columns)
    return f"(SELECT {columns} LIMIT 0)"


def sql_string(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def sql_identifier(name: str) -> str:
    """A SQL identifier (a column or table name), quoted so that any text is just a name."""
    return '"' + name.replace('"', '""') + '"'


def check_time_zone(con: duckdb.DuckDBPyConnection, zone: str, option: str = "--timezone") -> None:
    """Raise `InputError` unless DuckDB knows the IANA time zone `zone`."""
    from features.errors import InputError

    known = con.execute("SELECT count(*) FROM pg_timezone_names() WHERE name = ?", [zone]).fetchall()[0][0]
    if not known:
        raise InputError(
            f"{option} {zone!r}: unknown time zone (an IANA name such as Europe/Berlin or Asia/Shanghai)"
        )
