"""What happened after each cutoff: the labels the three models learn, computed in one SQL pass.

For a cutoff `as_of` and a horizon of H days, over customers with an order before `as_of`:

- `churn`: 1 if the customer placed no order in [as_of, as_of + H).
- `value`: spend in [as_of, as_of + H) (0 for churners; 0 as well when returns outweigh purchases:
  a customer is worth no less than nothing, and the Tweedie objective refuses negative labels).
- `growth`: 1 if spend in the horizon is positive and at least 20% above the spend of the H days
  before `as_of`, or the customer bought in at least two departments never bought before `as_of`
  (categories, where a dataset has no departments). Departments, not fine categories: Complete
  Journey has 300+ categories and nine households in ten "try" two new ones every quarter, which
  makes a label without information. Both parts are checkable later from the orders alone; for
  orders-only data only the spend part applies.
- `days_to_next_order`: days from `as_of` to the first order in the horizon (null when none).

`read_until` is the clock of a backtest: no order at or after it is read, and a cutoff whose
horizon would need one is refused.

Money is summed as DECIMAL: a DuckDB float sum depends on the order its threads meet the rows, so two
runs over the same orders could differ in the last bits, and a model trained on them could differ.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb
import pandas as pd

from features.errors import InputError

GROWTH_SPEND_RATIO = 1.2
GROWTH_NEW_CATEGORIES = 2


def _exact_sum(column: str) -> str:
    """A sum that does not depend on the order rows are added in (DECIMAL), as DOUBLE."""
    return f"CAST(sum(CAST({column} AS DECIMAL(38, 6))) AS DOUBLE)"


def label_sql(
    cutoffs: list[date],
    horizon_days: int,
    read_until: date,
    with_categories: bool,
    breadth: str = "department",
) -> str:
    """SQL over the canonical views `orders`, `order_lines`, `products` returning one row per eligible
    (customer, cutoff) with `churn`, `value`, `growth`, `days_to_next_order`, `spend_prev`."""
    values = ", ".join(f"(TIMESTAMPTZ '{d.isoformat()}')" for d in cutoffs)
    until = f"TIMESTAMPTZ '{read_until.isoformat()}'"
    new_categories = "0"
    category_cte = ""
    if with_categories:
        category_cte = f""",
    bought AS (
        SELECT DISTINCT l.customer_id, p.{breadth} AS grouping, date_trunc('day', l.ordered_at) AS day
        FROM order_lines l JOIN products p USING (product_id)
        WHERE p.{breadth} IS NOT NULL AND l.ordered_at < {until}
    ),
    first_bought AS (SELECT customer_id, grouping, min(day) AS first_day FROM bought GROUP BY ALL),
    new_in_horizon AS (
        SELECT c.as_of, f.customer_id, count(*) AS new_categories
        FROM first_bought f JOIN cut c
          ON f.first_day >= c.as_of AND f.first_day < c.as_of + INTERVAL {horizon_days} DAY
        GROUP BY ALL
    )"""
        new_categories = "coalesce(n.new_categories, 0)"
    join_new = "LEFT JOIN new_in_horizon n USING (as_of, customer_id)" if with_categories else ""
    return f"""
    WITH cut AS (SELECT * FROM (VALUES {values}) v(as_of)),
    known AS (SELECT * FROM orders WHERE ordered_at < {until}),
    eligible AS (
        SELECT c.as_of, o.customer_id FROM known o JOIN cut c ON o.ordered_at < c.as_of GROUP BY ALL
    ),
    ahead AS (
        SELECT c.as_of, o.customer_id, count(*) AS orders_next, {_exact_sum("o.amount")} AS spend_next,
               min(o.ordered_at) AS first_next
        FROM known o JOIN cut c
          ON o.ordered_at >= c.as_of AND o.ordered_at < c.as_of + INTERVAL {horizon_days} DAY
        GROUP BY ALL
    ),
    behind AS (
        SELECT c.as_of, o.customer_id, {_exact_sum("o.amount")} AS spend_prev
        FROM known o JOIN cut c
          ON o.ordered_at < c.as_of AND o.ordered_at >= c.as_of - INTERVAL {horizon_days} DAY
        GROUP BY ALL
    ){category_cte}
    SELECT e.customer_id, e.as_of AS event_timestamp,
           CAST(a.orders_next IS NULL AS INTEGER) AS churn,
           greatest(coalesce(a.spend_next, 0.0), 0.0) AS value,
           CAST((coalesce(a.spend_next, 0) > 0
                 AND coalesce(a.spend_next, 0) >= {GROWTH_SPEND_RATIO} * coalesce(b.spend_prev, 0))
                OR {new_categories} >= {GROWTH_NEW_CATEGORIES} AS INTEGER) AS growth,
           (epoch(a.first_next) - epoch(e.as_of)) / 86400.0 AS days_to_next_order,
           coalesce(b.spend_prev, 0.0) AS spend_prev
    FROM eligible e
    LEFT JOIN ahead a USING (as_of, customer_id)
    LEFT JOIN behind b USING (as_of, customer_id)
    {join_new}
    ORDER BY event_timestamp, customer_id
    """


def outcome_end(last_order: datetime, as_of: date, horizon_days: int, what: str = "backtest") -> date:
    """The day a horizon after `as_of` ends, checked against the data: a backtest needs that future.

    Raises:
        InputError: the data ends before the horizon does (saying until when orders are needed).
    """
    needed = as_of + timedelta(days=horizon_days)
    if last_order.date() + timedelta(days=1) < needed:
        raise InputError(
            f"a {horizon_days}-day {what} as of {as_of} needs orders until {needed}; the data ends {last_order.date()}"
        )
    return needed


def compute_labels(
    con: duckdb.DuckDBPyConnection,
    cutoffs: list[date],
    horizon_days: int,
    read_until: date,
    with_categories: bool,
) -> pd.DataFrame:
    """Labels for every customer with an order before each cutoff (canonical views must be registered).

    Raises:
        InputError: a cutoff's horizon reaches past `read_until` (its label is not known yet).
    """
    late = [d for d in cutoffs if d + timedelta(days=horizon_days) > read_until]
    if late:
        raise InputError(
            f"cutoff {late[0]} + {horizon_days} days ends after {read_until}: its outcome is not known yet"
        )
    has_departments = with_categories and bool(
        con.execute("SELECT EXISTS (SELECT 1 FROM products WHERE department IS NOT NULL)").fetchall()[0][0]
    )
    breadth = "department" if has_departments else "category"
    frame = con.execute(label_sql(cutoffs, horizon_days, read_until, with_categories, breadth)).df()
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True).astype(
        "datetime64[us, UTC]"
    )
    return frame
