"""Which column of a shop's file holds which canonical field (`--map customer_id=CUST_NO`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from features.errors import InputError

REQUIRED_FIELDS = ("customer_id", "order_id", "ordered_at", "amount")
LINE_FIELDS = ("product_id", "quantity")
OPTIONAL_FIELDS = (
    "product_id",
    "quantity",
    "discount",
    "coupon_discount",
    "items",
    "store_id",
    "department",
    "category",
    "subcategory",
    "brand",
    "is_private_label",
)
PRODUCT_FIELDS = ("department", "category", "subcategory", "brand", "is_private_label")
ALL_FIELDS = REQUIRED_FIELDS + OPTIONAL_FIELDS


@dataclass(frozen=True)
class ColumnMapping:
    """Canonical field -> source column, checked against the file's header.

    `has_lines` tells order-line files (a `product_id` column) from orders-only files.
    """

    columns: Mapping[str, str]

    @property
    def has_lines(self) -> bool:
        return "product_id" in self.columns

    def source(self, field: str) -> str | None:
        return self.columns.get(field)


def parse_map_options(options: Iterable[str]) -> dict[str, str]:
    """Parse repeated `FIELD=COLUMN` options; unknown fields and repeats are errors naming them."""
    parsed: dict[str, str] = {}
    for option in options:
        field, sep, column = option.partition("=")
        field, column = field.strip(), column.strip()
        if not sep or not field or not column:
            raise InputError(f"--map {option!r}: expected FIELD=COLUMN, e.g. --map customer_id=CUST_NO")
        if field not in ALL_FIELDS:
            raise InputError(
                f"--map {option!r}: unknown field {field!r}; known fields: {', '.join(ALL_FIELDS)}"
            )
        if field in parsed:
            raise InputError(f"--map: field {field!r} is mapped twice ({parsed[field]!r} and {column!r})")
        parsed[field] = column
    return parsed


def resolve_mapping(explicit: Mapping[str, str], header: list[str], source: Path) -> ColumnMapping:
    """Check a mapping against the file's columns, adding fields whose canonical name is a column.

    Raises:
        InputError: a mapped column is not in the file, or a required field has no column.
    """
    available = set(header)
    for field, column in explicit.items():
        if column not in available:
            raise InputError(
                f"{source}: column {column!r} (mapped to {field}) is not in the file; "
                f"its columns are: {', '.join(header)}"
            )
    columns = dict(explicit)
    for field in ALL_FIELDS:
        if field not in columns and field in available:
            columns[field] = field
    missing = [f for f in REQUIRED_FIELDS if f not in columns]
    if missing:
        raise InputError(
            f"{source}: required field(s) {', '.join(missing)} have no column; map them with "
            f"--map FIELD=COLUMN (the file's columns are: {', '.join(header)})"
        )
    if "quantity" in columns and "product_id" not in columns:
        raise InputError(f"{source}: quantity is mapped but product_id is not; order lines need a product")
    return ColumnMapping(columns)
