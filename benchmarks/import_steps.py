"""Steps the import benchmark runs in child processes (see `benchmarks.measure`)."""

from __future__ import annotations

import time
from pathlib import Path

from features.data.completejourney import package_data_dir
from features.data.duck import connect, table_sql
from features.data.store import DataStore
from features.settings import Settings
from pipelines.import_data import import_completejourney, import_file


def duckdb_count(path: str) -> int:
    """Reference: DuckDB counting the rows of the same file."""
    reader = "read_csv" if path.endswith((".csv", ".csv.gz")) else "read_parquet"
    return connect().execute(f"SELECT count(*) FROM {reader}('{path}')").fetchall()[0][0]


def duckdb_full_read(path: str) -> int:
    """Reference: DuckDB reading every column of the same file into a table."""
    reader = "read_csv" if path.endswith((".csv", ".csv.gz")) else "read_parquet"
    con = connect()
    con.execute(f"CREATE TABLE t AS SELECT * FROM {reader}('{path}')")
    return con.execute("SELECT count(*) FROM t").fetchall()[0][0]


def cj_transactions_path() -> str:
    return str(package_data_dir() / "transactions.parquet")


def import_cj(home: str) -> int:
    return import_completejourney(Settings.resolve(home)).rows_read


def import_lines_file(home: str, path: str, engine: str = "duckdb") -> dict:
    """Import `path` into `home` on `engine`; besides the counts, the seconds until the derived tables
    start (`checks_and_writes_s`: the rows checked, orders classified and written) and after."""
    marks: dict[str, float] = {}
    start = time.perf_counter()

    def on_step(name: str) -> None:
        marks.setdefault(name, time.perf_counter() - start)

    report = import_file(Settings.resolve(home, engine=engine), Path(path), [], on_step=on_step)
    total = time.perf_counter() - start
    before_derived = marks.get("summarizing for features", total)
    return {
        "read": report.rows_read,
        "accepted": report.rows_accepted,
        "orders": report.orders_added,
        "checks_and_writes_s": round(before_derived, 1),
        "derived_s": round(total - before_derived, 1),
    }


def synth(home: str, customers: int, seed: int) -> dict:
    from features.data.synth import generate

    report = generate(DataStore(Settings.resolve(home).data_dir), customers, seed)
    return {"orders": report.orders, "lines": report.order_lines}


def export_lines(home: str, path: str) -> int:
    """Write a home's order lines as one flat file, the way a shop would export them."""
    store = DataStore(Settings.resolve(home).data_dir)
    con = connect()
    lines = table_sql(store.live_version(), "order_lines")
    fmt = "(FORMAT csv, HEADER)" if path.endswith(".csv") else "(FORMAT parquet, COMPRESSION zstd)"
    con.execute(
        f"COPY (SELECT customer_id, order_id, ordered_at, amount, product_id, quantity, discount, coupon_discount "
        f"FROM {lines}) TO '{path}' {fmt}"
    )
    return con.execute(f"SELECT count(*) FROM {lines}").fetchall()[0][0]
