"""Derived tables: what the features need from order lines and order history, summarized once per import.

Several features look at every line a customer ever bought (the first purchase of each product, the
distinct categories of the last 90 days, spend per department) or at the customer's earlier orders
(days since the previous order). Computed from the lines at every feature build, one cutoff on a
million customers took 17 minutes; summarized here once per import, a cutoff reads a few rows per
customer instead of every line.

The summaries never depend on a cutoff, only on days: feature cutoffs are UTC midnights, so "before
as_of" and "within N days of as_of" are whole days. They are written by `write_derived_tables` into
the store version that holds the orders they summarize (the importer and the synthetic generator
call it inside their transaction), so they can never disagree with the orders. A version written
before these tables existed is read through `register_derived_views`, which computes them on the fly
from the canonical tables with the same SQL (slower, same values).

Like the feature query, the SQL is DuckDB's dialect and transpiles to Spark with sqlglot
(`spark_sql`; Spark must run with the session time zone UTC). It reads views named like the
canonical tables, plus `category_days`, an intermediate relation the breadth and first-purchase
summaries share (a temporary table while writing, a view otherwise).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb

from features.data.dialects import to_spark
from features.data.duck import register_tables, sql_string, stored_table_sql, table_sql
from features.data.schema import BREADTH_CHANGES, DEPARTMENT_DAYS, DERIVED_TABLES, ORDER_FACTS
from features.data.shop import DEFAULT_TIME_ZONE, shop_time_zone

#: Windows of the distinct category and department counts (`categories_90d`, ...).
BREADTH_WINDOWS = (90, 365)
BREADTH_KEYS = ("category", "department")

#: Intermediate relation: one row per customer, category and day with a purchase, with the
#: customer's previous and next purchase day in that category.
CATEGORY_DAYS = "category_days"


def _purchase_days(key: str) -> str:
    """The customer's previous and next purchase day of the same `key`, over a relation with `day`."""
    return (
        f"lag(day) OVER (PARTITION BY customer_id, {key} ORDER BY day) AS previous_day, "
        f"lead(day) OVER (PARTITION BY customer_id, {key} ORDER BY day) AS next_day"
    )


def _category_days_sql() -> str:
    return f"""
SELECT customer_id, category, day, {_purchase_days("category")}
FROM (SELECT DISTINCT l.customer_id, p.category, date_trunc('day', l.ordered_at) AS day
      FROM order_lines l JOIN products p USING (product_id) WHERE p.category IS NOT NULL)"""


def _department_days_sql() -> str:
    """Spend per customer, department and day, with the neighbouring purchase days and running totals.

    A cutoff's 365-day spend in a department is the total up to its last purchase day before the
    cutoff minus the total up to its last purchase day a year before: two rows per department
    (found by `day < point <= next_day`) instead of summing every day of the year for every cutoff.
    """
    return f"""
SELECT customer_id, department, day, {_purchase_days("department")}, spend,
       sum(spend) OVER history AS spend_to_date
FROM (SELECT l.customer_id, p.department, date_trunc('day', l.ordered_at) AS day,
             CAST(sum(CAST(l.amount AS DECIMAL(18, 4))) AS DOUBLE) AS spend
      FROM order_lines l JOIN products p USING (product_id) WHERE p.department IS NOT NULL
      GROUP BY ALL)
WINDOW history AS (PARTITION BY customer_id, department ORDER BY day)"""


def _breadth_changes_sql() -> str:
    """Distinct categories and departments bought within 90 and 365 days, as states with a validity.

    A category counts at cutoff t when it was bought on a day d with t - W <= d < t. Its purchase days
    form runs (consecutive days at most W apart); a run from d_a to d_b counts exactly at the cutoffs
    from d_a + 1 day to d_b + W days. Each run thus adds +1 at one date and -1 at another; the running
    sum of these changes per customer is the count, valid from one change to the next.
    """
    counters = [(key, window) for key in BREADTH_KEYS for window in BREADTH_WINDOWS]

    def changes(values: dict[tuple[str, int], str]) -> str:
        """The four counter columns in a fixed order (UNION ALL matches by position)."""
        return ", ".join(f"{values.get(c, '0')} AS {c[0]}_{c[1]}" for c in counters)

    def starts(window: int) -> str:
        return f"previous_day IS NULL OR previous_day < day - INTERVAL {window} DAY"

    events = []
    for key, days in (("category", CATEGORY_DAYS), ("department", DEPARTMENT_DAYS.name)):
        start_flags = {(key, w): f"CASE WHEN {starts(w)} THEN 1 ELSE 0 END" for w in BREADTH_WINDOWS}
        events.append(
            f"SELECT customer_id, day + INTERVAL 1 DAY AS from_day, {changes(start_flags)} "
            f"FROM {days} WHERE {starts(min(BREADTH_WINDOWS))}"
        )
        for window in BREADTH_WINDOWS:
            events.append(
                f"SELECT customer_id, day + INTERVAL {window + 1} DAY AS from_day, {changes({(key, window): '-1'})}"
                f" FROM {days} WHERE next_day IS NULL OR next_day > day + INTERVAL {window} DAY"
            )
    names = [f"{k}_{w}" for k, w in counters]
    sums = ", ".join(f"sum({n}) AS {n}" for n in names)
    running = ",\n       ".join(
        f"sum({n}) OVER running AS {n.replace('category', 'categories').replace('department', 'departments')}d"
        for n in names
    )
    union = "\n    UNION ALL\n    ".join(events)
    return f"""
WITH changes AS (
    SELECT customer_id, from_day, {sums} FROM (
    {union}
    ) GROUP BY customer_id, from_day
)
SELECT customer_id, from_day AS valid_from, lead(from_day) OVER running AS valid_to,
       {running}
FROM changes
WINDOW running AS (PARTITION BY customer_id ORDER BY from_day)"""


def _order_facts_sql(zone: str = DEFAULT_TIME_ZONE) -> str:
    """One row per order with what needs its lines or the customer's other orders.

    Products and categories bought for the first time are counted per customer and day (the day of
    the first purchase) and carried by the customer's first order of that day, so that a cutoff sums
    them over its orders like any other order column. Weekend is "5 or 6 days after the Monday of
    its week", which reads the same in Spark.
    """
    return f"""
WITH line_totals AS (
    SELECT l.order_id,
           CAST(sum(CAST(CASE WHEN l.discount > 0 THEN l.amount ELSE 0 END AS DECIMAL(18, 4))) AS DOUBLE)
               AS discounted_spend,
           CAST(sum(CAST(CASE WHEN p.is_private_label THEN l.amount ELSE 0 END AS DECIMAL(18, 4))) AS DOUBLE)
               AS private_spend
    FROM order_lines l LEFT JOIN products p USING (product_id)
    GROUP BY l.order_id
),
new_products AS (
    SELECT customer_id, day, count(*) AS new_products FROM (
        SELECT customer_id, date_trunc('day', min(ordered_at)) AS day FROM order_lines GROUP BY customer_id, product_id)
    GROUP BY customer_id, day
),
new_categories AS (
    SELECT customer_id, day, count(*) AS new_categories FROM {CATEGORY_DAYS} WHERE previous_day IS NULL
    GROUP BY customer_id, day
),
sequenced AS (
    SELECT *, date_trunc('day', ordered_at) AS day, date_trunc('week', ordered_at) AS week,
           ordered_at AT TIME ZONE {sql_string(zone)} AS local_at,
           lag(ordered_at) OVER (PARTITION BY customer_id ORDER BY ordered_at, order_id) AS previous_at
    FROM orders
)
SELECT o.customer_id, o.order_id, o.ordered_at, o.day, o.week,
       hour(o.local_at) AS hour_of_day,
       date_trunc('day', o.local_at) >= date_trunc('week', o.local_at) + INTERVAL 5 DAY AS is_weekend,
       isodow(o.local_at) AS weekday,
       o.amount, o.discount, o.items, o.lines, o.store_id,
       o.previous_at, (epoch_us(o.ordered_at) - epoch_us(o.previous_at)) / CAST(86400000000 AS DOUBLE) AS gap_days,
       o.previous_at IS NULL OR date_trunc('week', o.previous_at) < o.week AS first_of_week,
       t.discounted_spend, t.private_spend,
       coalesce(np.new_products, 0) AS new_products, coalesce(nc.new_categories, 0) AS new_categories
FROM (SELECT *, previous_at IS NULL OR date_trunc('day', previous_at) < day AS first_of_day FROM sequenced) o
LEFT JOIN line_totals t USING (order_id)
LEFT JOIN new_products np ON o.first_of_day AND np.customer_id = o.customer_id AND np.day = o.day
LEFT JOIN new_categories nc ON o.first_of_day AND nc.customer_id = o.customer_id AND nc.day = o.day"""


#: Every relation, in the order they are computed (later ones read earlier ones).
DERIVED_SQL = {
    CATEGORY_DAYS: _category_days_sql,
    DEPARTMENT_DAYS.name: _department_days_sql,
    BREADTH_CHANGES.name: _breadth_changes_sql,
    ORDER_FACTS.name: _order_facts_sql,
}


def derived_sql(table: str, zone: str = DEFAULT_TIME_ZONE) -> str:
    """The query computing derived `table` (or `category_days`) from the canonical and earlier relations;
    `zone` is the shop's local time zone (hours of day and weekends)."""
    return DERIVED_SQL[table](zone) if table == ORDER_FACTS.name else DERIVED_SQL[table]()


#: Order lines summarized at a time: a shop with more is summarized in parts of whole customers
#: (by a hash of their id), each about a million synthetic customers' lines, what DuckDB's default
#: memory limit holds. 10M customers in one part ran out of memory in `category_days`' windows.
LINES_PER_PART = 65_000_000


def write_derived_tables(con: duckdb.DuckDBPyConnection, version: Path, parts: int | None = None) -> None:
    """Compute every derived table from the canonical tables of `version` and write it into `version`.

    Call it inside the store transaction that writes the orders, after the order tables and products.
    Earlier derived files in the version (hard links of the previous version's) are replaced; each
    table is read back from its new file by the ones computed after it.

    Every derived row belongs to one customer, so the tables are computed in `parts` (default: one
    per `LINES_PER_PART` order lines) of whole customers, one file per part and table, which give
    the rows of one part.
    """
    register_tables(con, version)
    zone = shop_time_zone(version)
    if parts is None:
        lines = con.execute("SELECT count(*) FROM order_lines").fetchall()[0][0]
        parts = max(1, -(-lines // LINES_PER_PART))
    for name in DERIVED_TABLES:
        shutil.rmtree(version / name, ignore_errors=True)
        (version / name).mkdir(parents=True)
    con.execute("SET preserve_insertion_order = false")  # row order is irrelevant here; saves memory
    for part in range(parts):
        if parts > 1:
            for table in ("orders", "order_lines"):
                con.execute(
                    f"CREATE OR REPLACE TEMP VIEW {table} AS SELECT * FROM {table_sql(version, table)} "
                    f"WHERE hash(customer_id) % {parts} = {part}"
                )
        for name in DERIVED_SQL:
            if name not in DERIVED_TABLES:
                con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {derived_sql(name, zone)}")
                continue
            typed = ", ".join(
                f"CAST({c.name} AS {c.sql_type}) AS {c.name}" for c in DERIVED_TABLES[name].columns
            )
            target = sql_string(str(version / name / f"part-{part}.parquet"))
            con.execute(
                f"COPY (SELECT {typed} FROM ({derived_sql(name, zone)})) TO {target} "
                "(FORMAT parquet, COMPRESSION zstd)"
            )
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM read_parquet({target})")
    for name in DERIVED_SQL:
        con.execute(f"DROP {'VIEW' if name in DERIVED_TABLES else 'TABLE'} {name}")
    register_tables(con, version)
    con.execute("RESET preserve_insertion_order")


def register_derived_views(con: duckdb.DuckDBPyConnection, version: Path | None) -> None:
    """Views named like the derived tables: their files in `version`, else computed from the canonical
    views (with `version` None, always computed: for canonical views a caller has changed)."""
    zone = shop_time_zone(version)
    for name in DERIVED_SQL:
        stored = stored_table_sql(version, name)
        source = f"SELECT * FROM {stored}" if stored else derived_sql(name, zone)
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {source}")


def spark_sql(table: str, zone: str = DEFAULT_TIME_ZONE) -> str:
    """The query of derived `table` (or `category_days`) in Spark SQL (`features.data.dialects.to_spark`);
    raises if a construct has no Spark equivalent."""
    return to_spark(derived_sql(table, zone))
