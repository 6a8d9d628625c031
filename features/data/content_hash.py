"""An order's content fingerprint, the same on every engine: it tells a re-import from a changed order.

The import stores it with each order (`orders.content_hash`) and compares each incoming order's
with it; order events are checked against it too. It is SHA-256 of text both DuckDB and Spark write
alike: the customer, the order time in whole microseconds and, for order lines, every line as
`product:quantity:amount` sorted (for an order without lines, its amounts, discounts, items and store),
each number in whole millionths. So an import on either engine recognises the orders the other one
imported, and the order of the lines in a file does not matter.

Tierwise before December 2026 hashed with DuckDB's `hash()`, which Spark does not reproduce and
DuckDB does not promise to keep between versions. Those fingerprints are 32 hex digits, these 64:
`rehashed_orders_sql` recomputes the old ones from the stored rows, which hold everything hashed.
"""

from __future__ import annotations

#: Hex digits of a fingerprint; shorter ones were written by an older Tierwise.
LENGTH = 64


def _text(value: str) -> str:
    return f"coalesce(CAST({value} AS VARCHAR), '')"


def _millionths(value: str) -> str:
    return _text(f"TRY_CAST(round({value} * 1000000) AS BIGINT)")


def lines_hash_sql() -> str:
    """Aggregate SQL: the fingerprint of an order from its line rows (`product_id`, `quantity`,
    `amount`, `customer_id`, `ordered_at`), in a query grouped by order."""
    line = f"concat_ws(':', {_text('product_id')}, {_millionths('quantity')}, {_millionths('amount')})"
    return (
        f"sha256(concat_ws('|', {_text('any_value(customer_id)')}, "
        f"{_text('epoch_us(any_value(ordered_at))')}, array_to_string(list_sort(list({line})), ',')))"
    )


def order_hash_sql() -> str:
    """Row SQL: the fingerprint of an order without lines, from its row's columns."""
    parts = [
        _text("customer_id"),
        _text("epoch_us(ordered_at)"),
        *(_millionths(c) for c in ("amount", "discount", "coupon_discount", "items")),
        _text("store_id"),
    ]
    return f"sha256(concat_ws('|', {', '.join(parts)}))"


def rehashed_orders_sql(orders: str, order_lines: str) -> str:
    """`order_id, content_hash` of the orders in `orders` (a canonical orders relation) whose
    fingerprint an older Tierwise wrote, recomputed from their stored rows (`order_lines`)."""
    old = f"SELECT * FROM {orders} WHERE length(content_hash) <> {LENGTH}"
    return f"""
        SELECT order_id, {lines_hash_sql()} AS content_hash FROM {order_lines}
        WHERE order_id IN (SELECT order_id FROM ({old}) WHERE lines IS NOT NULL) GROUP BY order_id
        UNION ALL
        SELECT order_id, {order_hash_sql()} AS content_hash FROM ({old}) WHERE lines IS NULL"""
