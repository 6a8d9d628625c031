"""Feature snapshots on disk: one Parquet file of all customer features per cutoff date.

`<home>/data/features/customer/2017-10-01.parquet` holds one row per customer with an order before
2017-10-01, `event_timestamp` = that date (UTC midnight). Feast reads the folder as the offline
source of every feature view. Each file is written to a temporary name and renamed, so a reader
never sees half a snapshot, and rebuilding a date replaces its file (idempotent).
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb

from features.customer_features import DataCapabilities, feature_sql
from features.data.derived import register_derived_views
from features.data.duck import joins_as_written, register_tables, sql_string
from features.dated_snapshots import DatedSnapshots
from features.errors import InputError
from features.files import write_atomically

#: How long after the last order a cutoff may lie: later, the features would describe stale data.
MAX_DAYS_AFTER_LAST_ORDER = 7

#: Customer rows (customers x cutoffs) computed by one query. Cutoffs computed together share the
#: scans of the derived tables, but past a few million rows the aggregates outgrow DuckDB's memory
#: cap and spill. 12 monthly cutoffs of 1M customers: 380 s one per query, 187 s two (peak 2.8 GB),
#: 152-209 s three (3.7-6.0 GB), 155 s four (5.8 GB), 353 s all twelve at once.
ROWS_PER_PASS = 2_000_000

#: Parquet options of a snapshot. zstd's fastest level: writing one cutoff of 1M customers took 3.7 s
#: of CPU instead of 5.5 s at the default level, for files 11% larger (138 MB instead of 124 MB).
SNAPSHOT_FORMAT = "FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1"


@dataclass(frozen=True)
class DataPeriod:
    first_order: datetime
    last_order: datetime


def register_canonical_views(con: duckdb.DuckDBPyConnection, version: Path | None) -> None:
    """Create views named like the canonical and derived tables of one store version (what the SQL reads)."""
    register_tables(con, version)
    register_derived_views(con, version)


def capabilities(con: duckdb.DuckDBPyConnection) -> DataCapabilities:
    """What the registered dataset provides (orders-only data: lines, products, coupons are absent)."""
    return capabilities_from(lambda sql: bool(con.execute(f"SELECT EXISTS ({sql})").fetchall()[0][0]))


def capabilities_from(filled: Callable[[str], bool]) -> DataCapabilities:
    """The capabilities, given `filled(query)`: whether a query (DuckDB's dialect) returns any row.
    The one list of what each capability means, whichever engine runs the queries."""
    lines = filled("SELECT 1 FROM order_lines")
    return DataCapabilities(
        lines=lines,
        products=lines
        and filled("SELECT 1 FROM products WHERE department IS NOT NULL OR category IS NOT NULL"),
        discounts=filled("SELECT 1 FROM orders WHERE discount IS NOT NULL"),
        coupons=filled("SELECT 1 FROM campaign_recipients") or filled("SELECT 1 FROM coupon_redemptions"),
        stores=filled("SELECT 1 FROM orders WHERE store_id IS NOT NULL"),
        households=filled("SELECT 1 FROM customers WHERE age_band IS NOT NULL OR income_band IS NOT NULL"),
    )


def data_period(con: duckdb.DuckDBPyConnection) -> DataPeriod:
    return period_from(*con.execute(PERIOD_SQL).fetchall()[0])


#: The first and last order time (DuckDB's dialect).
PERIOD_SQL = "SELECT min(ordered_at), max(ordered_at) FROM orders"


def period_from(first: datetime | None, last: datetime | None) -> DataPeriod:
    """The data's period from its first and last order time (None: no orders)."""
    if first is None or last is None:
        raise InputError("no orders are imported: run `tierwise data import` first")
    return DataPeriod(first, last)


def check_cutoffs(cutoffs: Iterable[date], period: DataPeriod) -> list[date]:
    """Sorted distinct cutoffs, each after the first order and at most a week after the last.

    Raises:
        InputError: naming the first cutoff outside the data and the period the data covers.
    """
    chosen = sorted(set(cutoffs))
    if not chosen:
        raise InputError("no cutoff dates given")
    first_day = period.first_order.date()
    latest = period.last_order.date() + timedelta(days=MAX_DAYS_AFTER_LAST_ORDER)
    covered = f"the data covers {first_day} to {period.last_order.date()}"
    for cutoff in chosen:
        if cutoff <= first_day:
            raise InputError(f"as_of {cutoff} is not after the first order ({first_day}): {covered}")
        if cutoff > latest:
            raise InputError(
                f"as_of {cutoff} is more than {MAX_DAYS_AFTER_LAST_ORDER} days after the last order: {covered}"
            )
    return chosen


def parse_cutoff_range(spec: str) -> list[date]:
    """`FIRST:LAST:STEP` (STEP like `7d`, `2w` or `1m`) → dates from FIRST up to LAST inclusive."""
    try:
        start_text, end_text, step_text = spec.split(":")
        start, end = date.fromisoformat(start_text), date.fromisoformat(end_text)
        unit, count = step_text[-1], int(step_text[:-1])
    except ValueError as exc:
        raise InputError(
            f"--cutoffs {spec!r}: expected FIRST:LAST:STEP, e.g. 2017-03-05:2017-12-31:7d"
        ) from exc
    if unit not in "dwm" or count <= 0 or end < start:
        raise InputError(
            f"--cutoffs {spec!r}: STEP is a positive number with d, w or m; END is not before START"
        )
    dates, current, months = [], start, 0
    while current <= end:
        dates.append(current)
        if unit == "m":
            months += count
            year, month = divmod(start.month - 1 + months, 12)
            last_day = calendar.monthrange(start.year + year, month + 1)[1]
            current = date(start.year + year, month + 1, min(start.day, last_day))
        else:
            current += timedelta(days=count * (7 if unit == "w" else 1))
    return dates


def build_snapshots(
    con: duckdb.DuckDBPyConnection,
    cutoffs: list[date],
    folder: Path,
    caps: DataCapabilities | None = None,
    rows_per_pass: int = ROWS_PER_PASS,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[date, int]:
    """Compute features for `cutoffs` and write one snapshot file per cutoff.

    Cutoffs are computed together, as many per query as fit in `rows_per_pass` customer rows. The
    canonical views must be registered (`register_canonical_views`). Returns rows per cutoff;
    `on_progress(done, total)` hears of the cutoffs written after each pass.
    """
    caps = caps or capabilities(con)
    customers = int(con.execute("SELECT count(*) FROM customers").fetchall()[0][0])
    folder.mkdir(parents=True, exist_ok=True)
    return in_passes(
        cutoffs, customers, rows_per_pass, lambda chosen: _build_pass(con, chosen, folder, caps), on_progress
    )


def in_passes(
    cutoffs: list[date],
    customers: int,
    rows_per_pass: int,
    build_pass: Callable[[list[date]], dict[date, int]],
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[date, int]:
    """`build_pass` over consecutive groups of `cutoffs`, as many per group as fit in `rows_per_pass`
    customer rows (one at least); the rows per cutoff of all passes. The passes of either engine."""
    per_pass = max(1, rows_per_pass // max(1, customers))
    rows: dict[date, int] = {}
    for first in range(0, len(cutoffs), per_pass):
        rows |= build_pass(cutoffs[first : first + per_pass])
        if on_progress:
            on_progress(len(rows), len(cutoffs))
    return rows


def _build_pass(
    con: duckdb.DuckDBPyConnection, cutoffs: list[date], folder: Path, caps: DataCapabilities
) -> dict[date, int]:
    """One query for `cutoffs`, then one file per cutoff (written under a temporary name, then renamed).

    A single cutoff is written straight from the query (COPY reports the rows it wrote): a table of
    the result, read back filtered and then counted, is only needed to split several cutoffs.
    """
    values = ", ".join(f"({sql_string(d.isoformat())}::TIMESTAMPTZ)" for d in cutoffs)
    con.execute(f"CREATE OR REPLACE TEMP TABLE cutoffs AS SELECT * FROM (VALUES {values}) v(as_of)")
    with joins_as_written(con):
        if len(cutoffs) == 1:
            return {
                cutoffs[0]: _write_snapshot(con, feature_sql(caps), DatedSnapshots(folder).path(cutoffs[0]))
            }
        con.execute(f"CREATE OR REPLACE TEMP TABLE customer_features AS {feature_sql(caps)}")
    rows = {
        cutoff: _write_snapshot(
            con,
            f"SELECT * FROM customer_features WHERE event_timestamp = {sql_string(cutoff.isoformat())}::TIMESTAMPTZ",
            DatedSnapshots(folder).path(cutoff),
        )
        for cutoff in cutoffs
    }
    con.execute("DROP TABLE customer_features")
    return rows


def _write_snapshot(con: duckdb.DuckDBPyConnection, query: str, target: Path) -> int:
    """Write `query` to `target` atomically (`features.files.write_atomically`); returns the rows written."""
    rows: list[int] = []

    def copy(partial: Path) -> None:
        written = con.execute(f"COPY ({query}) TO {sql_string(str(partial))} ({SNAPSHOT_FORMAT})")
        rows.append(int(written.fetchall()[0][0]))

    write_atomically(target, copy)
    return rows[0]
