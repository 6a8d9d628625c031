"""Customer features as of any list of dates, as one SQL query over the canonical tables.

The query reads views named like the canonical tables (`orders`, `order_lines`, `products`,
`customers`, `campaigns`, `campaign_recipients`, `coupon_redemptions`) and a `cutoffs(as_of)` table,
and returns one row per customer and cutoff for every customer with an order before the cutoff.
Only rows strictly before `as_of` are used. All cutoffs are computed in one pass: orders are joined
to the cutoffs they precede, so a weekly backtest costs one scan, not one per week.

It is plain SQL in DuckDB's dialect (the embedded engine); `spark_sql()` transpiles the same text
with sqlglot for Spark, so the definition exists once. Inputs a dataset lacks (see
`DataCapabilities`) yield NULL features, never invented values.
"""

from __future__ import annotations

from dataclasses import dataclass

from features.catalog import FEATURES, WINDOWS, Needs

DAY = 86400.0


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
    return f"((epoch(c.as_of) - epoch({ts})) / {DAY})"


def _orders_sql(with_lines: bool) -> str:
    """Order-level aggregates per (cutoff, customer); with lines, each order also carries its
    discounted and private-label spend, summed from its lines once (not once per cutoff)."""
    line_totals = ""
    line_columns = "NULL::DOUBLE AS discounted_spend, NULL::DOUBLE AS private_spend"
    line_join = ""
    if with_lines:
        line_totals = """
    line_groups AS MATERIALIZED (
        SELECT l.order_id, l.customer_id, date_trunc('day', l.ordered_at) AS day, p.department, p.category,
               sum(l.amount) AS spend,
               sum(CASE WHEN l.discount > 0 THEN l.amount ELSE 0 END) AS discounted_spend,
               sum(CASE WHEN p.is_private_label THEN l.amount ELSE 0 END) AS private_spend
        FROM order_lines l LEFT JOIN products p USING (product_id)
        GROUP BY ALL
    ),
    order_line_totals AS (
        SELECT order_id, sum(discounted_spend) AS discounted_spend, sum(private_spend) AS private_spend
        FROM line_groups GROUP BY order_id
    ),"""
        line_columns = "t.discounted_spend, t.private_spend"
        line_join = "LEFT JOIN order_line_totals t USING (order_id)"
    windows = ",\n".join(
        f"count(*) FILTER (WHERE age <= {d}) AS orders_{d}d, coalesce(sum(amount) FILTER (WHERE age <= {d}), 0) AS spend_{d}d"
        for d in WINDOWS
    )
    return f"""{line_totals}
    ordered AS (
        SELECT customer_id, order_id, ordered_at, amount, discount, items, lines, store_id, {line_columns},
               (epoch(ordered_at) - epoch(lag(ordered_at) OVER (PARTITION BY customer_id ORDER BY ordered_at))) / {DAY}
                   AS gap_days,
               hour(ordered_at) AS hour_of_day, isodow(ordered_at) >= 6 AS is_weekend,
               date_trunc('week', ordered_at) AS week
        FROM orders {line_join}
    ),
    order_cutoffs AS (
        SELECT c.as_of, o.*, {_age("o.ordered_at")} AS age
        FROM ordered o JOIN cutoffs c ON o.ordered_at < c.as_of
    ),
    order_features AS (
        SELECT as_of, customer_id,
            min(age) AS days_since_last_order,
            max(age) AS tenure_days,
            count(*) AS orders_lifetime,
            sum(amount) AS spend_lifetime,
            {windows},
            coalesce(sum(amount) FILTER (WHERE age > 90 AND age <= 180), 0) AS spend_prev_90d,
            count(*) FILTER (WHERE age > 90 AND age <= 180) AS orders_prev_90d,
            avg(amount) FILTER (WHERE age <= 365) AS avg_order_value_365d,
            stddev_samp(amount) FILTER (WHERE age <= 365) AS order_value_std_365d,
            avg(gap_days) AS interorder_days_mean,
            stddev_samp(gap_days) AS interorder_days_std,
            count(DISTINCT week) FILTER (WHERE age <= 365) AS active_weeks_365d,
            sum(items) FILTER (WHERE age <= 365) AS items_365d,
            sum(lines) FILTER (WHERE age <= 365) AS lines_365d,
            sum(lines) FILTER (WHERE age <= 90) AS lines_90d,
            count(lines) FILTER (WHERE age <= 365) AS orders_with_lines_365d,
            sum(discount) FILTER (WHERE age <= 365) AS discount_365d,
            sum(amount) FILTER (WHERE age <= 365 AND discount > 0) AS discounted_order_spend_365d,
            sum(discounted_spend) FILTER (WHERE age <= 365) AS discounted_line_spend_365d,
            sum(private_spend) FILTER (WHERE age <= 365) AS private_spend_365d,
            avg(CASE WHEN hour_of_day BETWEEN 5 AND 11 THEN 1.0 ELSE 0.0 END) FILTER (WHERE age <= 365) AS morning_order_share_365d,
            avg(CASE WHEN hour_of_day BETWEEN 12 AND 16 THEN 1.0 ELSE 0.0 END) FILTER (WHERE age <= 365) AS afternoon_order_share_365d,
            avg(CASE WHEN hour_of_day BETWEEN 17 AND 21 THEN 1.0 ELSE 0.0 END) FILTER (WHERE age <= 365) AS evening_order_share_365d,
            avg(CASE WHEN hour_of_day >= 22 OR hour_of_day < 5 THEN 1.0 ELSE 0.0 END) FILTER (WHERE age <= 365) AS night_order_share_365d,
            avg(CASE WHEN is_weekend THEN 1.0 ELSE 0.0 END) FILTER (WHERE age <= 365) AS weekend_order_share_365d
        FROM order_cutoffs
        GROUP BY as_of, customer_id
    ),
    hour_counts AS (
        SELECT as_of, customer_id, hour_of_day, count(*) AS n FROM order_cutoffs WHERE age <= 365 GROUP BY ALL
    ),
    preferred_hour AS (
        SELECT as_of, customer_id, hour_of_day AS preferred_hour_365d FROM (
            SELECT *, row_number() OVER (PARTITION BY as_of, customer_id ORDER BY n DESC, hour_of_day) AS rank
            FROM hour_counts) WHERE rank = 1
    ),
    store_counts AS (
        SELECT as_of, customer_id, store_id, count(*) AS n FROM order_cutoffs
        WHERE age <= 365 AND store_id IS NOT NULL GROUP BY ALL
    ),
    main_store AS (
        SELECT as_of, customer_id, store_id AS main_store_id FROM (
            SELECT *, row_number() OVER (PARTITION BY as_of, customer_id ORDER BY n DESC, store_id) AS rank
            FROM store_counts) WHERE rank = 1
    )"""


def _lines_sql() -> str:
    """Line-level inputs, reduced before any cutoff join so that the join stays small.

    Distinct counts in a window use the gap to the next purchase: the category bought on day d
    counts at cutoff t exactly when d is the customer's last purchase of it before t (d < t <= next
    purchase) and t <= d + window. Each (customer, category) thus meets a cutoff at most once, and a
    plain count replaces COUNT(DISTINCT) over every cutoff's window.
    """
    breadth_windows = []
    for key in ("category", "department"):
        for days in (90, 365):
            breadth_windows.append(f"""
    {key}_{days} AS (
        SELECT c.as_of, d.customer_id, count(*) AS n
        FROM {key}_days d JOIN cutoffs c
          ON c.as_of > d.day AND c.as_of <= least(coalesce(d.next_day, d.day + INTERVAL {days} DAY), d.day + INTERVAL {days} DAY)
        GROUP BY ALL
    )""")
    distinct_days = []
    for key in ("category", "department"):
        distinct_days.append(f"""
    {key}_days AS (
        SELECT customer_id, {key}, day, lead(day) OVER (PARTITION BY customer_id, {key} ORDER BY day) AS next_day
        FROM (SELECT DISTINCT customer_id, {key}, day FROM line_days WHERE {key} IS NOT NULL)
    )""")
    return f"""
    ,
    line_days AS (
        SELECT customer_id, day, department, category, sum(spend) AS spend FROM line_groups GROUP BY ALL
    ),
    {",".join(distinct_days)},
    {",".join(breadth_windows)},
    breadth AS (
        SELECT o.as_of, o.customer_id, c90.n AS categories_90d, c365.n AS categories_365d,
               d90.n AS departments_90d, d365.n AS departments_365d
        FROM (SELECT DISTINCT as_of, customer_id FROM category_365 UNION SELECT as_of, customer_id FROM department_365) o
        LEFT JOIN category_90 c90 USING (as_of, customer_id) LEFT JOIN category_365 c365 USING (as_of, customer_id)
        LEFT JOIN department_90 d90 USING (as_of, customer_id) LEFT JOIN department_365 d365 USING (as_of, customer_id)
    ),
    department_day_spend AS (
        SELECT customer_id, department, day, sum(spend) AS spend FROM line_days
        WHERE department IS NOT NULL GROUP BY ALL
    ),
    department_spend AS (
        SELECT c.as_of, d.customer_id, d.department, sum(d.spend) AS spend
        FROM department_day_spend d JOIN cutoffs c ON d.day < c.as_of AND d.day >= c.as_of - INTERVAL 365 DAY
        GROUP BY ALL
    ),
    concentration AS (
        SELECT as_of, customer_id,
            sum(spend) FILTER (WHERE rank = 1) / nullif(sum(spend), 0) AS top_department_share_365d,
            sum(spend) FILTER (WHERE rank <= 3) / nullif(sum(spend), 0) AS top3_department_share_365d
        FROM (SELECT *, row_number() OVER (PARTITION BY as_of, customer_id ORDER BY spend DESC, department) AS rank
              FROM department_spend)
        GROUP BY as_of, customer_id
    ),
    first_product_days AS (
        SELECT customer_id, first_day, count(*) AS n FROM (
            SELECT customer_id, product_id, date_trunc('day', min(ordered_at)) AS first_day FROM order_lines GROUP BY ALL)
        GROUP BY ALL
    ),
    new_products AS (
        SELECT c.as_of, f.customer_id, sum(f.n) AS new_products_90d
        FROM first_product_days f JOIN cutoffs c
          ON f.first_day < c.as_of AND f.first_day >= c.as_of - INTERVAL 90 DAY
        GROUP BY ALL
    ),
    first_category_days AS (
        SELECT customer_id, first_day, count(*) AS n FROM (
            SELECT customer_id, category, min(day) AS first_day FROM line_days WHERE category IS NOT NULL GROUP BY ALL)
        GROUP BY ALL
    ),
    new_categories AS (
        SELECT c.as_of, f.customer_id, sum(f.n) AS new_categories_90d
        FROM first_category_days f JOIN cutoffs c
          ON f.first_day < c.as_of AND f.first_day >= c.as_of - INTERVAL 90 DAY
        GROUP BY ALL
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
        "new_products_90d": "coalesce(np.new_products_90d, 0)",
        "new_product_rate_90d": f"coalesce(np.new_products_90d, 0) / nullif({o}.lines_90d, 0)",
        "categories_90d": "coalesce(b.categories_90d, 0)",
        "categories_365d": "coalesce(b.categories_365d, 0)",
        "departments_90d": "coalesce(b.departments_90d, 0)",
        "departments_365d": "coalesce(b.departments_365d, 0)",
        "new_categories_90d": "coalesce(nc.new_categories_90d, 0)",
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


def feature_sql(caps: DataCapabilities) -> str:
    """The query computing every catalog feature for every (customer, cutoff); columns:
    `customer_id`, `event_timestamp` (the cutoff), then the features in catalog order."""
    exprs = _expressions(caps)
    ctes = _orders_sql(caps.lines)
    joins = [
        "LEFT JOIN preferred_hour ph USING (as_of, customer_id)",
        "LEFT JOIN main_store ms USING (as_of, customer_id)",
        "LEFT JOIN customers h USING (customer_id)",
    ]
    if caps.lines:
        ctes += _lines_sql()
        joins += [
            "LEFT JOIN breadth b USING (as_of, customer_id)",
            "LEFT JOIN concentration k USING (as_of, customer_id)",
            "LEFT JOIN new_products np USING (as_of, customer_id)",
            "LEFT JOIN new_categories nc USING (as_of, customer_id)",
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
        f"FROM order_features o\n    " + "\n    ".join(joins) + "\nORDER BY event_timestamp, customer_id"
    )


def spark_sql(caps: DataCapabilities) -> str:
    """The same query in Spark SQL (transpiled by sqlglot from the DuckDB text)."""
    import sqlglot

    return sqlglot.transpile(feature_sql(caps), read="duckdb", write="spark", pretty=True)[0]
