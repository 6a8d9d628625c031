"""Row-level checks of imported orders: every refused row gets exactly one reason.

The checks are SQL over a staged source (see `features.data.sources`), so they run inside DuckDB at
the speed of a scan. Each row gets the first reason that applies, in the order of `Reason`.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from features.data.duck import sql_string
from features.data.mapping import OPTIONAL_FIELDS


class Reason(StrEnum):
    """Why a row was quarantined."""

    MISSING_ORDER_ID = "missing_order_id"
    MISSING_CUSTOMER_ID = "missing_customer_id"
    MISSING_TIMESTAMP = "missing_timestamp"
    UNPARSEABLE_TIMESTAMP = "unparseable_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    MISSING_AMOUNT = "missing_amount"
    NON_NUMERIC_AMOUNT = "non_numeric_amount"
    MISSING_PRODUCT_ID = "missing_product_id"
    NON_NUMERIC_QUANTITY = "non_numeric_quantity"
    NON_NUMERIC_DISCOUNT = "non_numeric_discount"
    MALFORMED_ROW = "malformed_row"
    CONFLICTING_DUPLICATE_ORDER = "conflicting_duplicate_order"
    CONFLICTS_WITH_EXISTING_ORDER = "conflicts_with_existing_order"
    #: Order events only (`features.data.order_events`): a body that is not an order, or a field
    #: the schema does not have (a misspelt `ammount` would otherwise be dropped without a word).
    MALFORMED_EVENT = "malformed_event"
    UNKNOWN_FIELD = "unknown_field"


NUMERIC_FIELDS = ("amount", "quantity", "discount", "coupon_discount", "items")

#: Fields whose text `typed_select` keeps beside the parsed value (`<field>_text`), for messages.
TEXT_KEPT = ("ordered_at", "amount", "quantity", "discount", "coupon_discount")
#: The columns of `typed_select`, before its `reason`.
TYPED_COLUMNS = (
    "source_line",
    *(
        column
        for name in ("order_id", "customer_id", "ordered_at", "amount", *OPTIONAL_FIELDS)
        for column in ((f"{name}_text", name) if name in TEXT_KEPT else (name,))
    ),
)


def typed_select(
    staged: str,
    fields: Mapping[str, str],
    *,
    has_lines: bool,
    now_sql: str,
    timezone: str = "UTC",
    timestamp_format: str | None = None,
) -> str:
    """SQL that casts a staged source to canonical types and adds the row-level `reason` (null if valid).

    Args:
        staged: Name of a view with `source_line` and canonical field names.
        fields: Canonical fields the source provides -> their DuckDB type in the view. Text is parsed
            (and refused with a reason when it does not parse); typed columns are used as they are.
        has_lines: Whether rows are order lines (then `product_id` is required).
        now_sql: SQL TIMESTAMPTZ literal for "now": later order times are refused.
        timezone: Zone of timestamps that carry no offset.
        timestamp_format: strptime format, when timestamps are not ISO-8601.
    """

    def is_text(field: str) -> bool:
        return fields.get(field, "VARCHAR") == "VARCHAR"

    def text(field: str) -> str:
        if field not in fields:
            return "NULL::VARCHAR"
        if is_text(field):
            return f"NULLIF(trim({field}), '')"
        return f"CAST({field} AS VARCHAR)"

    def present(field: str) -> str:
        """The raw value when it is text (for messages), else a marker: only NULL-ness is used."""
        if field in fields and not is_text(field):
            return f"CASE WHEN {field} IS NULL THEN NULL ELSE '' END"
        return text(field)

    def number(field: str) -> str:
        if field not in fields:
            return "NULL::DOUBLE"
        if is_text(field):
            return f"TRY_CAST({text(field)} AS DOUBLE)"
        return f"TRY_CAST({field} AS DOUBLE)"

    ts_text = present("ordered_at")
    if "ordered_at" in fields and not is_text("ordered_at") and not timestamp_format:
        parsed = "TRY_CAST(ordered_at AS TIMESTAMP)"
    elif timestamp_format:
        parsed = f"try_strptime({text('ordered_at')}, {sql_string(timestamp_format)})"
    else:
        parsed = "TRY_CAST(ordered_at AS TIMESTAMP)" if "ordered_at" in fields else "NULL::TIMESTAMP"
        parsed = f"COALESCE({parsed}, TRY_CAST({text('ordered_at')} AS TIMESTAMPTZ)::TIMESTAMP)"
    ordered_at = (
        f"timezone({sql_string(timezone)}, {parsed})" if timezone != "UTC" else f"{parsed}::TIMESTAMPTZ"
    )
    if is_text("ordered_at") and not timestamp_format:
        # A time with its own offset (`Z`, `+02:00`) is that instant; casting it to TIMESTAMP would drop
        # the offset and read the wall time in the shop's zone instead.
        ordered_at = (
            f"CASE WHEN regexp_matches({text('ordered_at')}, '[0-9]:[0-9]{{2}}(:[0-9]{{2}}([.][0-9]+)?)? ?(Z|[+-][0-9]{{2}}(:?[0-9]{{2}})?)$') "
            f"THEN TRY_CAST({text('ordered_at')} AS TIMESTAMPTZ) ELSE {ordered_at} END"
        )

    line_checks = ""
    if has_lines:
        line_checks = f"""
            WHEN product_id IS NULL THEN '{Reason.MISSING_PRODUCT_ID}'
            WHEN quantity_text IS NOT NULL AND (quantity IS NULL OR NOT isfinite(quantity))
                THEN '{Reason.NON_NUMERIC_QUANTITY}'"""
    return f"""
        SELECT *,
            CASE
                WHEN order_id IS NULL THEN '{Reason.MISSING_ORDER_ID}'
                WHEN customer_id IS NULL THEN '{Reason.MISSING_CUSTOMER_ID}'
                WHEN ordered_at_text IS NULL THEN '{Reason.MISSING_TIMESTAMP}'
                WHEN ordered_at IS NULL THEN '{Reason.UNPARSEABLE_TIMESTAMP}'
                WHEN ordered_at > {now_sql} THEN '{Reason.FUTURE_TIMESTAMP}'
                WHEN amount_text IS NULL THEN '{Reason.MISSING_AMOUNT}'
                WHEN amount IS NULL OR NOT isfinite(amount) THEN '{Reason.NON_NUMERIC_AMOUNT}'
                {line_checks}
                WHEN (discount_text IS NOT NULL AND discount IS NULL)
                  OR (coupon_discount_text IS NOT NULL AND coupon_discount IS NULL)
                    THEN '{Reason.NON_NUMERIC_DISCOUNT}'
            END AS reason
        FROM (
            SELECT
                source_line,
                {text("order_id")} AS order_id,
                {text("customer_id")} AS customer_id,
                {ts_text} AS ordered_at_text,
                {ordered_at} AS ordered_at,
                {present("amount")} AS amount_text,
                {number("amount")} AS amount,
                {text("product_id")} AS product_id,
                {present("quantity")} AS quantity_text,
                {number("quantity")} AS quantity,
                {present("discount")} AS discount_text,
                abs({number("discount")}) AS discount,
                {present("coupon_discount")} AS coupon_discount_text,
                abs({number("coupon_discount")}) AS coupon_discount,
                {number("items")} AS items,
                {text("store_id")} AS store_id,
                {text("department")} AS department,
                {text("category")} AS category,
                {text("subcategory")} AS subcategory,
                {text("brand")} AS brand,
                lower({text("is_private_label")}) IN ('1', 'true', 't', 'yes', 'y', 'private')
                    AS is_private_label
            FROM {staged}
        )
    """
