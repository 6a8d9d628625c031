"""The canonical schema as Markdown: `tierwise data schema` prints it and docs/schema.md is a copy of it."""

from __future__ import annotations

from features.data.schema import ALL_TABLES, CUSTOMER_ROW_GROUP, DERIVED_TABLES, Table


def schema_markdown() -> str:
    """One section per canonical table, then per derived table: description, layout, key and columns."""
    parts = [
        "# Canonical schema",
        "",
        "Generated from `features/data/schema.py` by `tierwise data schema`; a test keeps this file in step.",
        "Tables are Parquet folders under `<home>/data/tables/`; `orders` and `order_lines` are partitioned",
        "by month (`month=YYYY-MM/`), readable by DuckDB (`read_parquet(..., hive_partitioning = true)`)",
        "and Spark (`spark.read.parquet`). Each import adds one file per month, its rows ordered by",
        f"customer in row groups of {CUSTOMER_ROW_GROUP:,} (one customer's history is a few row groups of each file).",
        "Required columns are filled by every source.",
    ]
    for table in ALL_TABLES.values():
        parts += _section(table)
    parts += [
        "",
        "# Derived tables",
        "",
        "Summaries of the tables above that the feature query reads instead of the order lines",
        "(`features/data/derived.py`). Every import writes them into the same store version as the",
        'orders, so they always describe exactly the live orders; nobody edits them. "Required" means',
        "never null.",
    ]
    for table in DERIVED_TABLES.values():
        parts += _section(table)
    return "\n".join(parts) + "\n"


def _section(table: Table) -> list[str]:
    layout = "partitioned by month" if table.partitioned_by_month else "one folder"
    parts = [
        "",
        f"## `{table.name}`",
        "",
        table.description,
        "",
        f"Key: `{', '.join(table.key)}`; {layout}.",
        "",
    ]
    parts += ["| column | type | required | meaning |", "|---|---|---|---|"]
    parts += [
        f"| `{c.name}` | {c.sql_type} | {'yes' if c.required else ''} | {c.description} |"
        for c in table.columns
    ]
    return parts
