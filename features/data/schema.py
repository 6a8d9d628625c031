"""The canonical tables every source is imported into, and every later step reads.

One schema for Complete Journey, a shop's own export and the synthetic generator, so that features,
training and scoring never branch on where the data came from. Types are DuckDB SQL types; the
tables are Parquet, hive-partitioned by `month` (``YYYY-MM``) where they grow with time, which
DuckDB (`read_parquet(..., hive_partitioning=true)`) and Spark (`spark.read.parquet`) both read.

Identifiers are strings: shops use alphanumeric ids, and a string id survives every tool unchanged.
Timestamps are UTC with microsecond precision (`TIMESTAMPTZ`): Feast's DuckDB path fails on
nanosecond timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """One column of a canonical table.

    Attributes:
        name: Column name.
        sql_type: DuckDB type.
        required: Whether every source must provide it (others are null when unknown).
        description: Meaning, units and sign conventions.
    """

    name: str
    sql_type: str
    required: bool
    description: str


@dataclass(frozen=True)
class Table:
    """A canonical table: its columns, key and whether it is partitioned by month."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    partitioned_by_month: bool
    description: str

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def select_list(self) -> str:
        """A SQL select list in canonical order (`name` for each column)."""
        return ", ".join(self.column_names)


def _col(name: str, sql_type: str, description: str, required: bool = False) -> Column:
    return Column(name, sql_type, required, description)


ORDERS = Table(
    name="orders",
    key=("order_id",),
    partitioned_by_month=True,
    description="One row per order (basket). Amounts are what the customer paid, in the shop's currency.",
    columns=(
        _col("order_id", "VARCHAR", "Order (basket) identifier, unique.", required=True),
        _col("customer_id", "VARCHAR", "Customer (household) identifier.", required=True),
        _col("ordered_at", "TIMESTAMPTZ", "When the order was placed, UTC.", required=True),
        _col("amount", "DOUBLE", "Total paid, after discounts. Negative for a return.", required=True),
        _col("discount", "DOUBLE", "Total price discount (positive number), null when unknown."),
        _col("coupon_discount", "DOUBLE", "Part of the discount from coupons (positive), null when unknown."),
        _col("items", "DOUBLE", "Units bought (sum of line quantities), null for orders-only data."),
        _col("lines", "BIGINT", "Number of order lines, null for orders-only data."),
        _col("store_id", "VARCHAR", "Store, channel or community that fulfilled the order, if known."),
        _col("is_return", "BOOLEAN", "Amount is negative: a refund or return, kept and flagged."),
        _col("is_zero_value", "BOOLEAN", "Amount is zero: kept and flagged, not dropped."),
        _col(
            "content_hash",
            "VARCHAR",
            "Fingerprint of the order's content, to tell re-imports from conflicts.",
        ),
        _col("import_id", "VARCHAR", "The import that added the order (see the imports log)."),
        _col("month", "VARCHAR", "Partition: month of `ordered_at`, YYYY-MM."),
    ),
)

ORDER_LINES = Table(
    name="order_lines",
    key=("order_id", "line_number"),
    partitioned_by_month=True,
    description=(
        "One row per product in an order. `customer_id` and `ordered_at` are repeated from the order "
        "so that feature queries scan one table. Absent for orders-only data."
    ),
    columns=(
        _col("order_id", "VARCHAR", "Order the line belongs to.", required=True),
        _col("line_number", "BIGINT", "Position of the line within its order, from 1.", required=True),
        _col("customer_id", "VARCHAR", "Customer, as on the order.", required=True),
        _col("ordered_at", "TIMESTAMPTZ", "Order time, as on the order.", required=True),
        _col("product_id", "VARCHAR", "Product bought.", required=True),
        _col("quantity", "DOUBLE", "Units (or weight). Negative for a returned line."),
        _col("amount", "DOUBLE", "Paid for the line, after discounts.", required=True),
        _col("discount", "DOUBLE", "Price discount on the line (positive), null when unknown."),
        _col("coupon_discount", "DOUBLE", "Coupon part of the discount (positive), null when unknown."),
        _col("is_return", "BOOLEAN", "Amount or quantity negative."),
        _col("is_zero_value", "BOOLEAN", "Amount or quantity zero."),
        _col("month", "VARCHAR", "Partition: month of `ordered_at`, YYYY-MM."),
    ),
)

CUSTOMERS = Table(
    name="customers",
    key=("customer_id",),
    partitioned_by_month=False,
    description="One row per customer seen in any order; household attributes where the source has them.",
    columns=(
        _col("customer_id", "VARCHAR", "Customer (household) identifier.", required=True),
        _col("age_band", "VARCHAR", "Age band of the head of household, e.g. '35-44'."),
        _col("income_band", "VARCHAR", "Income band, e.g. '50-74K'."),
        _col("household_size", "VARCHAR", "People in the household ('5+' allowed)."),
        _col("kids_count", "VARCHAR", "Children in the household ('3+' allowed)."),
        _col("home_ownership", "VARCHAR", "Homeowner, renter, ..."),
        _col("marital_status", "VARCHAR", "Married, unmarried, ..."),
        _col("household_comp", "VARCHAR", "Household composition, e.g. '2 Adults Kids'."),
    ),
)

PRODUCTS = Table(
    name="products",
    key=("product_id",),
    partitioned_by_month=False,
    description="One row per product with its place in the assortment.",
    columns=(
        _col("product_id", "VARCHAR", "Product identifier.", required=True),
        _col("department", "VARCHAR", "Top level of the assortment (e.g. PRODUCE, MEAT)."),
        _col("category", "VARCHAR", "Product category within the department."),
        _col("subcategory", "VARCHAR", "Finer product type."),
        _col("brand", "VARCHAR", "Brand or manufacturer."),
        _col("is_private_label", "BOOLEAN", "The retailer's own brand."),
    ),
)

CAMPAIGNS = Table(
    name="campaigns",
    key=("campaign_id",),
    partitioned_by_month=False,
    description="Marketing campaigns (optional).",
    columns=(
        _col("campaign_id", "VARCHAR", "Campaign identifier.", required=True),
        _col("campaign_type", "VARCHAR", "Kind of campaign."),
        _col("start_date", "TIMESTAMPTZ", "First day, UTC."),
        _col("end_date", "TIMESTAMPTZ", "Last day, UTC."),
    ),
)

CAMPAIGN_RECIPIENTS = Table(
    name="campaign_recipients",
    key=("campaign_id", "customer_id"),
    partitioned_by_month=False,
    description="Which customers received which campaign (optional).",
    columns=(
        _col("campaign_id", "VARCHAR", "Campaign.", required=True),
        _col("customer_id", "VARCHAR", "Customer who received it.", required=True),
    ),
)

COUPON_REDEMPTIONS = Table(
    name="coupon_redemptions",
    key=("customer_id", "coupon_id", "campaign_id", "redeemed_at"),
    partitioned_by_month=False,
    description="Coupons redeemed (optional).",
    columns=(
        _col("customer_id", "VARCHAR", "Customer who redeemed.", required=True),
        _col("coupon_id", "VARCHAR", "Coupon.", required=True),
        _col("campaign_id", "VARCHAR", "Campaign the coupon belongs to."),
        _col("redeemed_at", "TIMESTAMPTZ", "Day of redemption, UTC.", required=True),
    ),
)

QUARANTINE = Table(
    name="quarantine",
    key=("source_sha256", "source_line", "reason"),
    partitioned_by_month=False,
    description="Rows an import refused, with the reason and the original row, so nothing is lost.",
    columns=(
        _col("import_id", "VARCHAR", "The import that refused the row.", required=True),
        _col("source", "VARCHAR", "File (or package) the row came from.", required=True),
        _col(
            "source_sha256", "VARCHAR", "Content hash of that file: re-importing it replaces its rows here."
        ),
        _col(
            "source_line", "BIGINT", "Line in a CSV file (header = 1) or 1-based row of a Parquet file.", True
        ),
        _col(
            "reason",
            "VARCHAR",
            "Why the row was refused (see `features.data.validate.Reason`).",
            required=True,
        ),
        _col("raw", "VARCHAR", "The original row as JSON.", required=True),
    ),
)

IMPORTS = Table(
    name="imports",
    key=("import_id",),
    partitioned_by_month=False,
    description="One row per import: what was read, accepted, added and quarantined.",
    columns=(
        _col("import_id", "VARCHAR", "Import identifier (time-ordered).", required=True),
        _col("source", "VARCHAR", "What was imported.", required=True),
        _col("source_sha256", "VARCHAR", "Content hash of the source."),
        _col("started_at", "TIMESTAMPTZ", "When the import started, UTC.", required=True),
        _col("rows_read", "BIGINT", "Rows read from the source.", required=True),
        _col("rows_accepted", "BIGINT", "Rows that passed validation.", required=True),
        _col(
            "rows_quarantined", "BIGINT", "Rows refused (rows_read = rows_accepted + rows_quarantined).", True
        ),
        _col("orders_added", "BIGINT", "Orders new to the store.", required=True),
        _col("orders_already_present", "BIGINT", "Orders identical to ones already imported.", required=True),
    ),
)

ORDER_TABLES = (ORDERS, ORDER_LINES)
#: Rows per Parquet row group of the order tables, each file ordered by customer: small enough that
#: one customer's history is a few row groups (an order event reads it; `features.event_features`).
CUSTOMER_ROW_GROUP = 8_192
REFERENCE_TABLES = (CUSTOMERS, PRODUCTS, CAMPAIGNS, CAMPAIGN_RECIPIENTS, COUPON_REDEMPTIONS)
ALL_TABLES: dict[str, Table] = {t.name: t for t in (*ORDER_TABLES, *REFERENCE_TABLES, QUARANTINE, IMPORTS)}

# Derived tables: summaries of the tables above that the feature query reads (see
# `features.data.derived`), rewritten by every import in the same store version.

ORDER_FACTS = Table(
    name="order_facts",
    key=("order_id",),
    partitioned_by_month=False,
    description=(
        "Derived. One row per order with what needs its lines or the customer's other orders: "
        "the gap to the previous order, spend on discounted and private-label lines, and the "
        "products and categories the customer bought for the first time that day."
    ),
    columns=(
        _col("customer_id", "VARCHAR", "Customer.", required=True),
        _col("order_id", "VARCHAR", "Order.", required=True),
        _col("ordered_at", "TIMESTAMPTZ", "Order time, UTC.", required=True),
        _col("day", "TIMESTAMPTZ", "UTC midnight of the order's day.", required=True),
        _col("week", "TIMESTAMPTZ", "Monday (UTC midnight) of the order's ISO week.", required=True),
        _col("hour_of_day", "INTEGER", "Hour of `ordered_at` in the shop's time zone (0-23).", required=True),
        _col("is_weekend", "BOOLEAN", "Placed on Saturday or Sunday in the shop's time zone.", required=True),
        _col(
            "weekday",
            "INTEGER",
            "ISO day of the week in the shop's time zone (1 Monday - 7 Sunday).",
            required=True,
        ),
        _col("amount", "DOUBLE", "As on the order.", required=True),
        _col("discount", "DOUBLE", "As on the order."),
        _col("items", "DOUBLE", "As on the order."),
        _col("lines", "BIGINT", "As on the order."),
        _col("store_id", "VARCHAR", "As on the order."),
        _col("previous_at", "TIMESTAMPTZ", "Time of the customer's previous order; null for the first."),
        _col("gap_days", "DOUBLE", "Days since the customer's previous order; null for the first."),
        _col("first_of_week", "BOOLEAN", "The customer's first order in its week.", required=True),
        _col("discounted_spend", "DOUBLE", "Amount of the lines with a discount; null without lines."),
        _col("private_spend", "DOUBLE", "Amount of the private-label lines; null without lines."),
        _col(
            "new_products",
            "BIGINT",
            "Products the customer bought for the first time that day; on the day's first order, else 0.",
            required=True,
        ),
        _col(
            "new_categories",
            "BIGINT",
            "Categories the customer bought for the first time that day; on the day's first order, else 0.",
            required=True,
        ),
    ),
)

BREADTH_CHANGES = Table(
    name="breadth_changes",
    key=("customer_id", "valid_from"),
    partitioned_by_month=False,
    description=(
        "Derived. Distinct categories and departments a customer bought in the 90 and 365 days before "
        "a cutoff, for every cutoff from `valid_from` (inclusive) to `valid_to` (exclusive)."
    ),
    columns=(
        _col("customer_id", "VARCHAR", "Customer.", required=True),
        _col("valid_from", "TIMESTAMPTZ", "First cutoff (UTC midnight) with these counts.", required=True),
        _col("valid_to", "TIMESTAMPTZ", "First cutoff with other counts; null while they last."),
        _col("categories_90d", "BIGINT", "Distinct categories bought in the 90 days before.", required=True),
        _col(
            "categories_365d", "BIGINT", "Distinct categories bought in the 365 days before.", required=True
        ),
        _col(
            "departments_90d", "BIGINT", "Distinct departments bought in the 90 days before.", required=True
        ),
        _col(
            "departments_365d", "BIGINT", "Distinct departments bought in the 365 days before.", required=True
        ),
    ),
)

DEPARTMENT_DAYS = Table(
    name="department_days",
    key=("customer_id", "department", "day"),
    partitioned_by_month=False,
    description=(
        "Derived. Spend per customer, department and day with running totals (for the department "
        "shares: a window's spend is the difference of two running totals)."
    ),
    columns=(
        _col("customer_id", "VARCHAR", "Customer.", required=True),
        _col("department", "VARCHAR", "Department of the products bought.", required=True),
        _col(
            "day",
            "TIMESTAMPTZ",
            "UTC midnight of a day the customer bought in the department.",
            required=True,
        ),
        _col("previous_day", "TIMESTAMPTZ", "The previous such day; null for the first."),
        _col("next_day", "TIMESTAMPTZ", "The next such day; null for the last."),
        _col("spend", "DOUBLE", "Amount of the customer's lines in that department that day.", required=True),
        _col(
            "spend_to_date", "DOUBLE", "Amount in the department up to and including the day.", required=True
        ),
    ),
)

DERIVED_TABLES: dict[str, Table] = {t.name: t for t in (ORDER_FACTS, BREADTH_CHANGES, DEPARTMENT_DAYS)}
