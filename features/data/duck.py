"""DuckDB connections set up the way every Tierwise query expects, and reads of canonical tables."""

from __future__ import annotations

from pathlib import Path

import duckdb

from features.data.schema import ALL_TABLES


def connect(memory_limit: str | None = None, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection in UTC, so TIMESTAMPTZ values never shift with the host's zone."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def table_sql(version: Path | None, table: str) -> str:
    """SQL table expression for canonical `table` in a store version; empty with the right columns if absent."""
    folder = version / table if version is not None else None
    if folder is None or not any(folder.rglob("*.parquet")):
        return empty_table_sql(table)
    if ALL_TABLES[table].partitioned_by_month:
        return (
            f"read_parquet('{folder.as_posix()}/**/*.parquet', hive_partitioning = true, "
            "hive_types = {'month': VARCHAR})"
        )
    return f"read_parquet('{folder.as_posix()}/*.parquet')"


def empty_table_sql(table: str) -> str:
    """SQL for an empty relation with the canonical columns of `table` (for a table not yet written)."""
    columns = ", ".join(f"NULL::{c.sql_type} AS {c.name}" for c in ALL_TABLES[table].columns)
    return f"(SELECT {columns} LIMIT 0)"


def sql_string(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"
