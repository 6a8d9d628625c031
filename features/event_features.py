"""Features of the customers an order event touched: the batch feature query, run for a few customers.

There is one feature definition (`features.customer_features.feature_sql` over the derived tables of
`features.data.derived`). The batch runs it over every customer; here it runs over the canonical rows
of the touched customers only, read from the live store version into temporary tables, plus their
events not yet imported (`features.data.event_log`), checked and shaped into canonical rows by the
import's own SQL. The derived tables are computed from those rows with their own SQL, so the values
equal what the nightly build computes for the same instant once the import has written the events.

The cutoff of an event's features is the UTC midnight after its day, clamped to no earlier than the
features the store already serves: the batch snapshot for that midnight holds the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd

from features.customer_features import DataCapabilities, feature_sql
from features.data.content_hash import LENGTH as FINGERPRINT_LENGTH
from features.data.content_hash import rehashed_orders_sql
from features.data.derived import DERIVED_SQL, derived_sql
from features.data.duck import joins_as_written, sql_string, table_sql
from features.data.event_log import LoggedEvent
from features.data.importer import (
    candidate_orders_sql,
    line_rows_sql,
    merge_products_sql,
    order_rows_sql,
    products_from_lines_sql,
)
from features.data.order_events import type_event_rows
from features.data.schema import ALL_TABLES, ORDER_LINES, ORDERS, PRODUCTS
from features.data.shop import shop_time_zone
from features.data.store import DataStore
from features.live_data import connect_in_home, open_live_data
from features.settings import Settings
from features.snapshots import capabilities

#: Canonical tables with a `customer_id`: read for the touched customers only.
PER_CUSTOMER = ("orders", "order_lines", "customers", "campaign_recipients", "coupon_redemptions")


def event_cutoff(ordered_at: datetime) -> date:
    """The first feature cutoff that sees an order: the UTC midnight after its day."""
    return ordered_at.astimezone(UTC).date() + timedelta(days=1)


@dataclass
class EventFeatures:
    """Computes features for a few customers over the live store plus their unimported events.

    Not thread-safe (one DuckDB connection): the caller serializes. A new live version (an import)
    is picked up on the next call.
    """

    settings: Settings

    def __post_init__(self) -> None:
        self.con = connect_in_home(self.settings)
        self.con.execute("SET threads = 1")  # a few customers' rows: more threads only add hand-offs
        # Every event opens the same order files of the live version: parse their footers once.
        self.con.execute("SET parquet_metadata_cache = true")
        self._version: Path | None = None
        self._caps: DataCapabilities | None = None
        self._loaded: tuple | None = None

    def close(self) -> None:
        self.con.close()

    def known_orders(self, customers: Sequence[str]) -> dict[str, str]:
        """Fingerprint by order id of the customers' imported orders: the orders table alone, not
        their whole history (checking an event needs no lines). Fingerprints an older Tierwise wrote
        are recomputed from the stored rows until the next import rewrites them."""
        version = DataStore(self.settings.data_dir).live_version()
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE known_orders AS SELECT * FROM {table_sql(version, ORDERS.name)} "
            "WHERE customer_id IN (SELECT unnest(?::VARCHAR[]))",
            [list(customers)],
        )
        known = dict(self.con.execute("SELECT order_id, content_hash FROM known_orders").fetchall())
        if any(len(fingerprint) != FINGERPRINT_LENGTH for fingerprint in known.values()):
            lines = (
                f"(SELECT * FROM {table_sql(version, ORDER_LINES.name)} "
                "WHERE order_id IN (SELECT order_id FROM known_orders))"
            )
            known.update(self.con.execute(rehashed_orders_sql("known_orders", lines)).fetchall())
        return known

    def compute(self, customers: Sequence[str], events: Sequence[LoggedEvent], as_of: date) -> pd.DataFrame:
        """Every catalog feature of `customers` as of `as_of` (UTC midnight), from their imported
        orders and `events` (their unimported ones): one row per customer with an order before it."""
        con = self.con
        self._read_history(customers)
        for table in PER_CUSTOMER:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM stored_{table}")
        # Only the products these customers bought: the derived tables read products through their
        # lines, and a join against the whole catalog costs more than the rest of their query.
        products = f"SELECT * FROM stored_{PRODUCTS.name} WHERE product_id IN (SELECT product_id FROM {ORDER_LINES.name})"
        if events:
            products = self._add_events(events, shop_time_zone(self._version), products)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {PRODUCTS.name} AS {products}")
        for name in DERIVED_SQL:
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {name} AS {derived_sql(name, shop_time_zone(self._version))}"
            )
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE cutoffs AS SELECT {sql_string(as_of.isoformat())}::TIMESTAMPTZ AS as_of"
        )
        with joins_as_written(con):
            return con.execute(feature_sql(self._caps)).df()  # type: ignore[arg-type]

    def _read_history(self, customers: Sequence[str]) -> None:
        """The customers' rows of the live version into `stored_<table>` temporary tables (once per
        customer set and version); products in memory and the other canonical tables as views (once
        per version)."""
        con = self.con
        version = DataStore(self.settings.data_dir).live_version()
        key = (version, tuple(sorted(set(customers))))
        if key == self._loaded:
            return
        if version != self._version or self._caps is None:
            whole = open_live_data(self.settings)  # capabilities are the dataset's, not these customers'
            self._caps, self._version = capabilities(whole), version
            whole.close()
            for table in ALL_TABLES:
                if table == PRODUCTS.name:  # read by every derived table: held in memory per version
                    con.execute(
                        f"CREATE OR REPLACE TEMP TABLE stored_{table} AS SELECT * FROM {table_sql(version, table)}"
                    )
                elif table not in PER_CUSTOMER:
                    con.execute(
                        f"CREATE OR REPLACE TEMP VIEW {table} AS SELECT * FROM {table_sql(version, table)}"
                    )
        con.execute(
            "CREATE OR REPLACE TEMP TABLE touched AS SELECT unnest(?::VARCHAR[]) AS customer_id",
            [list(key[1])],
        )
        for table in PER_CUSTOMER:
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE stored_{table} AS SELECT * FROM {table_sql(version, table)} "
                "WHERE customer_id IN (SELECT customer_id FROM touched)"
            )
        self._loaded = key

    def _add_events(self, events: Sequence[LoggedEvent], zone: str, products: str) -> str:
        """The events' orders (and lines) as canonical rows, by the import's SQL, added to the history;
        returns `products` (a query) with the attributes the events' lines describe merged in."""
        con = self.con
        now_sql = f"{sql_string(datetime.now(UTC).isoformat())}::TIMESTAMPTZ"
        for with_lines in (False, True):
            bodies = [(e.seq, e.body) for e in events if ("lines" in e.body) == with_lines]
            if not bodies:
                continue
            type_event_rows(con, bodies, with_lines, now_sql, zone)
            # An event whose order a batch import has written meanwhile is read from the import.
            con.execute(f"DELETE FROM event_typed WHERE order_id IN (SELECT order_id FROM {ORDERS.name})")
            candidates = candidate_orders_sql(with_lines, "event_typed")
            con.execute(f"INSERT INTO {ORDERS.name} BY NAME {order_rows_sql(candidates, 'events')}")
            if with_lines:
                con.execute(
                    f"INSERT INTO {ORDER_LINES.name} BY NAME "
                    f"{line_rows_sql('event_typed', 'SELECT order_id FROM event_typed')}"
                )
                sent = {name for _, body in bodies for line in body["lines"] for name in line}
                described = products_from_lines_sql(frozenset(sent), "event_typed")
                if described:
                    con.execute(f"CREATE OR REPLACE TEMP TABLE event_described AS {described}")
                    products = merge_products_sql(products, "SELECT * FROM event_described")
        return products


def pushed_frame(features: pd.DataFrame) -> pd.DataFrame:
    """Feature rows shaped for Feast's push: the cutoff as a UTC timestamp column."""
    frame = features.copy()
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    return frame
