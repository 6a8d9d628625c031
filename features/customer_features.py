"""Customer features as of any list of dates, as one SQL query over the derived and canonical tables.

The query reads the derived tables (`order_facts`, `breadth_changes`, `department_days`, see
`features.data.derived`: per-order and per-day summaries of the lines, written at import), the
canonical `customers`, `campaigns`, `campaign_recipients`, `coupon_redemptions`, and a
`cutoffs(as_of)` table of UTC midnights (dates: the derived tables count days). It returns one row
per customer and cutoff for every customer with an order before the cutoff. Only rows strictly
before `as_of` are used. All cutoffs are computed in one pass: orders are joined to the cutoffs they
precede, so a weekly backtest costs one scan, not one per week; no order line is read.

It is plain SQL in DuckDB's dialect (the embedded engine); `spark_sql()` transpiles the same text
with sqlglot for Spark, so the definition exists once. Inputs a dataset lacks (see
`DataCapabilities`) yield NULL features, never invented values.
"""

from __future__ import annotations

from dataclasses import dataclass

from features.catalog import FEATURES, WINDOWS, Needs
from features.data.dialects import to_spark

#: Microseconds in a day. Ages are differences of whole microseconds divided as doubles: Spark's
#: `unix_timestamp` drops fractions of a second, and its decimal division rounds to a few places.
DAY_US = 86_400_000_000


@dataclass(frozen=True)
class DataCapabilities:
    """Which optional inputs a dataset has; features needing a missing one are NULL.

    `products` implies `lines` (product attributes are only used through order lines).
    """

    lines: bool
    products: bool
    discounts: bool
    coupons: bool
    stores: bool
    households: bool

    def has(self, need: Needs) -> bool:
        return {
            Needs.ORDERS: True,
            Needs.LINES: self.lines,
            Needs.PRODUCTS: self.products,
            Needs.DISCOUNTS: self.discounts,
            Needs.COUPONS: self.coupons,
            Needs.STORES: self.stores,
            Needs.HOUSEHOLDS: self.households,
        }[need]


def _age(ts: str) -> str:
    """Days from `ts` to the cutoff (positive for the past)."""
    return f"((epoch_us(c.as_of) - epoch_us({ts})) / CAST({DAY_US} AS DOUBLE))"


def _when(condition: str, value: str = "1") -> str:
    """`value` where `condition` holds, else NULL, which aggregates skip: `sum(_when(c, x))` is
    `sum(x) FILTER (WHERE c)`. DuckDB 2.0 spent twice the CPU time on this query's aggregates written
    with FILTER clauses (each evaluated on its own) as with these CASE expressions."""
    return f"CASE WHEN {condition} THEN {value} END"


#: Money, quantities and gaps are summed as decimals: a sum of doubles depends on the order its rows
#: arrive in, which DuckDB's parallel aggregation does not fix, so two builds of the same snapshot
#: differed in the last bits (enough for tuning to pick another trial). Decimal sums are exact; each
#: is turned into a double at once, because the engines divide decimals differently (DuckDB answers a
#: double, Spark a decimal rounded to its own scale), and doubles divide the same everywhere.
EXACT = "DECIMAL(18, 4)"
#: Gaps between orders are whole microseconds, summed exactly (with their squares, for the deviation).
EXACT_GAP = "DECIMAL(38, 0)"


def _sum(value: str, exact: str = EXACT) -> str:
    return f"CAST(sum(CAST({value} AS {exact})) AS DOUBLE)"


def _mean(value: str, exact: str = EXACT) -> str:
    x = f"CAST({value} AS {exact})"
    return f"(CAST(sum({x}) AS DOUBLE) / nullif(count({x}), 0))"


def _std(value: str, exact: str = EXACT) -> str:
    """Sample standard deviation from exact sums (NULL under two values, like `stddev_samp`)."""
    x = f"CAST({value} AS {exact})"
    n = f"count({x})"
    return (
        f"sqrt(greatest(0, (CAST(sum({x} * {x}) AS DOUBLE) - pow(CAST(sum({x}) AS DOUBLE), 2) / {n}) "
        f"/ nullif({n} - 1, 0)))"
    )


def _orders_sql() -> str:
    """Order-level aggregates per (cutoff, customer), from `order_facts`.

    Active weeks are counted without COUNT(DISTINCT): an order opens a week in the window when it is
    the customer's first order of its week, or its predecessor lies outside the window. The main
    store is the one with most orders, ties to the smallest id: the least (-orders, id) of an
    aggregate rather than a window ranking every customer's stores (preferred hour and main store
    at one cutoff of 1M customers: 6.4 -> 5.8 s, with the year as a timestamp comparison).
    """
    year = "age <= 365"
    windows = ",\n            ".join(
        f"count({_when(f'age <= {d}')}) AS orders_{d}d, "
        f"coalesce({_sum(_when(f'age <= {d}', 'amount'))}, 0) AS spend_{d}d"
        for d in WINDOWS
    )
    day_parts = {
        "morning": "hour_of_day BETWEEN 5 AND 11",
        "afternoon": "hour_of_day BETWEEN 12 AND 16",
        "evening": "hour_of_day BETWEEN 17 AND 21",
        "night": "(hour_of_day >= 22 OR hour_of_day < 5)",
        "weekend": "is_weekend",
    }
    shares = ",\n            ".join(
        f"count({_when(f'{year} AND {condition}')}) / nullif(count({_when(year)}), 0) AS {name}_order_share_365d"
        for name, condition in day_parts.items()
    )
    prev_90 = "age > 90 AND age <= 180"
    new_90 = "day >= as_of - INTERVAL 90 DAY"
    # Joined again rather than read from `order_cutoffs`: a CTE read twice is materialized, and at
    # 12 cutoffs of a million customers that copy of every order and cutoff spilled gigabytes.
    # `age <= 365` as a comparison of timestamps (the same orders: cutoffs are UTC midnights and
    # times are whole microseconds), which the join evaluates without computing ages.
    year_orders = (
        "SELECT c.as_of, o.customer_id, o.hour_of_day, o.weekday, o.store_id FROM order_facts o JOIN cutoffs c "
        "ON o.ordered_at < c.as_of AND o.ordered_at >= c.as_of - INTERVAL 365 DAY"
    )
    return f"""
    order_cutoffs AS (
        SELECT c.as_of, o.*, {_age("o.ordered_at")} AS age, {_age("o.previous_at")} AS previous_age,
               epoch_us(o.ordered_at) - epoch_us(o.previous_at) AS gap_us
        FROM order_facts o JOIN cutoffs c ON o.ordered_at < c.as_of
    ),
    order_features AS (
        SELECT as_of, customer_id,
            min(age) AS days_since_last_order,
            max(age) AS tenure_days,
            count(*) AS orders_lifetime,
            {_sum("amount")} AS spend_lifetime,
            {windows},
            coalesce({_sum(_when(prev_90, "amount"))}, 0) AS spend_prev_90d,
            count({_when(prev_90)}) AS orders_prev_90d,
            {_mean(_when(year, "amount"))} AS avg_order_value_365d,
            {_std(_when(year, "amount"))} AS order_value_std_365d,
            {_mean("gap_us", EXACT_GAP)} / {DAY_US} AS interorder_days_mean,
            {_std("gap_us", EXACT_GAP)} / {DAY_US} AS interorder_days_std,
            count({_when(f"{year} AND (first_of_week OR previous_age > 365)")}) AS active_weeks_365d,
            {_sum(_when(year, "items"))} AS items_365d,
            sum({_when(year, "lines")}) AS lines_365d,
            sum({_when("age <= 90", "lines")}) AS lines_90d,
            count({_when(year, "lines")}) AS orders_with_lines_365d,
            {_sum(_when(year, "discount"))} AS discount_365d,
            {_sum(_when(f"{year} AND discount > 0", "amount"))} AS discounted_order_spend_365d,
            {_sum(_when(year, "discounted_spend"))} AS discounted_line_spend_365d,
            {_sum(_when(year, "private_spend"))} AS private_spend_365d,
            sum({_when(new_90, "new_products")}) AS new_products_90d,
            sum({_when(new_90, "new_categories")}) AS new_categories_90d,
            {shares}
        FROM order_cutoffs
        GROUP BY as_of, customer_id
    ),
    hour_counts AS (
        SELECT as_of, customer_id, hour_of_day, count(*) AS n FROM ({year_orders}) GROUP BY ALL
    ),
    preferred_hour AS (
        SELECT as_of, customer_id, arg_max(hour_of_day, n * 24 + 23 - hour_of_day) AS preferred_hour_365d
        FROM hour_counts GROUP BY as_of, customer_id
    ),
    weekday_counts AS (
        SELECT as_of, customer_id, weekday, count(*) AS n FROM ({year_orders}) GROUP BY ALL
    ),
    preferred_weekday AS (
        SELECT as_of, customer_id, arg_max(weekday, n * 8 + 7 - weekday) AS preferred_weekday_365d
        FROM weekday_counts GROUP BY as_of, customer_id
    ),
    store_counts AS (
        SELECT as_of, customer_id, store_id, count(*) AS n FROM ({year_orders})
        WHERE store_id IS NOT NULL GROUP BY ALL
    ),
    main_store AS (
        SELECT as_of, customer_id, arg_min(store_id, struct_pack(fewer := -n, store := store_id)) AS main_store_id
        FROM store_counts GROUP BY as_of, customer_id
    )"""


def _lines_sql() -> str:
    """Breadth and department shares, from the derived tables (no order line is read).

    `breadth_changes` holds each customer's counts with the cutoffs they are valid for, so a cutoff
    picks one row per customer. A department bought in the year has its last purchase before the
    cutoff within the year; its spend is the difference of the running totals at that purchase and
    at the last purchase before the year, taken only for departments bought again within the year, so
    that this side of the join is never the larger one (the hash table is built on it, see
    `features.snapshots`). The three largest come from a sorted list padded with
    zeros (ties do not change the sum; the padding keeps every index valid, also under Spark's ANSI
    mode): sorting a dozen values per customer took a fifth of the time of a window ranking every
    department of every customer.
    """
    return """
    ,
    breadth AS (
        SELECT c.as_of, b.customer_id, b.categories_90d, b.categories_365d, b.departments_90d, b.departments_365d
        FROM breadth_changes b JOIN cutoffs c
          ON b.valid_from <= c.as_of AND (b.valid_to IS NULL OR c.as_of < b.valid_to)
    ),
    department_now AS (
        SELECT c.as_of, d.customer_id, d.department, d.spend_to_date
        FROM department_days d JOIN cutoffs c
          ON d.day < c.as_of AND d.day >= c.as_of - INTERVAL 365 DAY
         AND (d.next_day IS NULL OR d.next_day >= c.as_of)
    ),
    department_year_ago AS (
        SELECT c.as_of, d.customer_id, d.department, d.spend_to_date
        FROM department_days d JOIN cutoffs c
          ON d.day < c.as_of - INTERVAL 365 DAY
         AND d.next_day >= c.as_of - INTERVAL 365 DAY AND d.next_day < c.as_of
    ),
    department_spend AS (
        SELECT as_of, customer_id, department,
               CAST(n.spend_to_date AS DECIMAL(18, 4)) - CAST(coalesce(a.spend_to_date, 0) AS DECIMAL(18, 4)) AS spend
        FROM department_now n LEFT JOIN department_year_ago a USING (as_of, customer_id, department)
    ),
    department_ranking AS (
        SELECT as_of, customer_id, CAST(sum(spend) AS DOUBLE) AS spend, CAST(max(spend) AS DOUBLE) AS top,
               list_concat(list_sort(list(CAST(spend AS DOUBLE)), 'DESC'), [0::DOUBLE, 0::DOUBLE, 0::DOUBLE]) AS ranked,
               arg_min(department, struct_pack(less := -spend, name := department)) AS top_department
        FROM department_spend GROUP BY as_of, customer_id
    ),
    concentration AS (
        SELECT as_of, customer_id, top / nullif(spend, 0) AS top_department_share_365d,
               CASE WHEN top > 0 THEN top_department END AS top_department_365d,
               (ranked[1] + ranked[2] + ranked[3]) / nullif(spend, 0) AS top3_department_share_365d
        FROM department_ranking
    )"""


def _coupons_sql() -> str:
    return """
    ,
    redemptions AS (
        SELECT c.as_of, r.customer_id, count(*) AS coupon_redemptions_365d
        FROM coupon_redemptions r JOIN cutoffs c
          ON r.redeemed_at < c.as_of AND r.redeemed_at >= c.as_of - INTERVAL 365 DAY
        GROUP BY ALL
    ),
    received AS (
        SELECT c.as_of, r.customer_id, count(*) AS campaigns_received_365d
        FROM campaign_recipients r JOIN campaigns k USING (campaign_id) JOIN cutoffs c
          ON k.start_date < c.as_of AND k.start_date >= c.as_of - INTERVAL 365 DAY
        GROUP BY ALL
    )"""


def _expressions(caps: DataCapabilities) -> dict[str, str]:
    """SQL expression of every catalog feature over the joined CTEs."""
    o = "o"
    exprs = {
        "days_since_last_order": f"{o}.days_since_last_order",
        "tenure_days": f"{o}.tenure_days",
        "orders_lifetime": f"{o}.orders_lifetime",
        "spend_lifetime": f"{o}.spend_lifetime",
        "avg_order_value_365d": f"{o}.avg_order_value_365d",
        "order_value_cv_365d": f"{o}.order_value_std_365d / nullif({o}.avg_order_value_365d, 0)",
        "interorder_days_mean": f"{o}.interorder_days_mean",
        "interorder_days_std": f"{o}.interorder_days_std",
        "overdue_ratio": f"{o}.days_since_last_order / nullif({o}.interorder_days_mean, 0)",
        "active_weeks_365d": f"{o}.active_weeks_365d",
        "active_week_share_365d": f"{o}.active_weeks_365d / least(52, greatest(1, ceil({o}.tenure_days / 7)))",
        "orders_per_active_week_365d": f"{o}.orders_365d / nullif({o}.active_weeks_365d, 0)",
        "spend_trend_90d": f"coalesce(({o}.spend_90d - {o}.spend_prev_90d) / nullif({o}.spend_90d + {o}.spend_prev_90d, 0), 0)",
        "orders_trend_90d": f"coalesce(({o}.orders_90d - {o}.orders_prev_90d) / nullif({o}.orders_90d + {o}.orders_prev_90d, 0), 0)",
        "items_per_order_365d": f"{o}.items_365d / nullif({o}.orders_with_lines_365d, 0)",
        "products_per_order_365d": f"{o}.lines_365d / nullif({o}.orders_with_lines_365d, 0)",
        "new_products_90d": f"coalesce({o}.new_products_90d, 0)",
        "new_product_rate_90d": f"coalesce({o}.new_products_90d, 0) / nullif({o}.lines_90d, 0)",
        "categories_90d": "coalesce(b.categories_90d, 0)",
        "categories_365d": "coalesce(b.categories_365d, 0)",
        "departments_90d": "coalesce(b.departments_90d, 0)",
        "departments_365d": "coalesce(b.departments_365d, 0)",
        "new_categories_90d": f"coalesce({o}.new_categories_90d, 0)",
        "top_department_share_365d": "k.top_department_share_365d",
        "top3_department_share_365d": "k.top3_department_share_365d",
        "discounted_spend_share_365d": (
            f"{o}.discounted_line_spend_365d / nullif({o}.spend_365d, 0)"
            if caps.lines
            else f"{o}.discounted_order_spend_365d / nullif({o}.spend_365d, 0)"
        ),
        "discount_rate_365d": f"{o}.discount_365d / nullif({o}.spend_365d + {o}.discount_365d, 0)",
        "coupon_redemptions_365d": "coalesce(r.coupon_redemptions_365d, 0)",
        "campaigns_received_365d": "coalesce(rc.campaigns_received_365d, 0)",
        "coupon_redemption_rate_365d": "coalesce(r.coupon_redemptions_365d, 0) / nullif(rc.campaigns_received_365d, 0)",
        "private_label_share_365d": f"{o}.private_spend_365d / nullif({o}.spend_365d, 0)",
        "morning_order_share_365d": f"{o}.morning_order_share_365d",
        "afternoon_order_share_365d": f"{o}.afternoon_order_share_365d",
        "evening_order_share_365d": f"{o}.evening_order_share_365d",
        "night_order_share_365d": f"{o}.night_order_share_365d",
        "weekend_order_share_365d": f"{o}.weekend_order_share_365d",
        "preferred_hour_365d": "ph.preferred_hour_365d",
        "preferred_weekday_365d": "pw.preferred_weekday_365d",
        "top_department_365d": "k.top_department_365d",
        "main_store_id": "ms.main_store_id",
        "age_band": "h.age_band",
        "income_band": "h.income_band",
        "household_size": "h.household_size",
        "kids_count": "h.kids_count",
        "home_ownership": "h.home_ownership",
        "marital_status": "h.marital_status",
    }
    for days in WINDOWS:
        exprs[f"orders_{days}d"] = f"{o}.orders_{days}d"
        exprs[f"spend_{days}d"] = f"{o}.spend_{days}d"
    return exprs


def feature_sql(caps: DataCapabilities, ordered: bool = True) -> str:
    """The query computing every catalog feature for every (customer, cutoff); columns:
    `customer_id`, `event_timestamp` (the cutoff), then the features in catalog order, sorted by
    cutoff and customer unless `ordered` is False (a writer that sorts each cutoff's file itself)."""
    exprs = _expressions(caps)
    ctes = _orders_sql()
    joins = [
        "LEFT JOIN preferred_hour ph USING (as_of, customer_id)",
        "LEFT JOIN preferred_weekday pw USING (as_of, customer_id)",
        "LEFT JOIN main_store ms USING (as_of, customer_id)",
        "LEFT JOIN customers h USING (customer_id)",
    ]
    if caps.lines:
        ctes += _lines_sql()
        joins += [
            "LEFT JOIN breadth b USING (as_of, customer_id)",
            "LEFT JOIN concentration k USING (as_of, customer_id)",
        ]
    if caps.coupons:
        ctes += _coupons_sql()
        joins += [
            "LEFT JOIN redemptions r USING (as_of, customer_id)",
            "LEFT JOIN received rc USING (as_of, customer_id)",
        ]
    columns = []
    for feature in FEATURES:
        sql_type = "VARCHAR" if feature.dtype == "string" else "DOUBLE"
        value = exprs[feature.name] if caps.has(feature.needs) else "NULL"
        columns.append(f"CAST({value} AS {sql_type}) AS {feature.name}")
    select = ",\n        ".join(columns)
    return (
        f"WITH {ctes}\nSELECT o.customer_id, o.as_of AS event_timestamp,\n        {select}\n"
        f"FROM order_features o\n    "
        + "\n    ".join(joins)
        + ("\nORDER BY event_timestamp, customer_id" if ordered else "")
    )


def habit_profile_sql(caps: DataCapabilities) -> str:
    """Each customer's habit profiles per cutoff, from the feature query's own relations: the share
    of the year's orders on each ISO weekday (`kind` weekday, `key` 1-7) and, with products, the
    share of the year's spend in each department (`kind` department). The features keep one number
    of each (`preferred_weekday_365d`, `top_department_share_365d`); the profiles are the whole
    distributions, for staff and exports. Columns: customer_id, as_of, kind, key, share."""
    ctes = _orders_sql() + (_lines_sql() if caps.lines and caps.products else "")
    share = "/ sum({0}) OVER (PARTITION BY as_of, customer_id)"
    parts = [
        f"SELECT customer_id, as_of, 'weekday' AS kind, CAST(weekday AS VARCHAR) AS key, "
        f"n {share.format('n')} AS share FROM weekday_counts"
    ]
    if caps.lines and caps.products:
        parts.append(
            f"SELECT customer_id, as_of, 'department', department, CAST(spend AS DOUBLE) "
            f"{share.format('CAST(spend AS DOUBLE)')} FROM department_spend"
        )
    return (
        f"WITH {ctes}\n" + "\nUNION ALL ".join(parts) + "\nORDER BY as_of, customer_id, kind, share DESC, key"
    )


def spark_sql(caps: DataCapabilities) -> str:
    """The same query in Spark SQL (`features.data.dialects.to_spark`), without the final sort: Spark
    writes each cutoff's file sorted by customer (`features.spark_files`), and a global ORDER BY would
    make it sample the query's result first, which runs the whole query twice. Raises if a construct
    has no Spark equivalent. The derived tables come from `features.data.derived.spark_sql`."""
    return to_spark(feature_sql(caps, ordered=False))
