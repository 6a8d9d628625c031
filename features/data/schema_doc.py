"""The canonical schema as Markdown: `tierwise data schema` prints it and docs/schema.md is a copy of it."""

from __future__ import annotations

from features.data.schema import ALL_TABLES


def schema_markdown() -> str:
    """One section per canonical table: description, layout, key and columns."""
    parts = [
        "# Canonical schema",
        "",
        "Generated from `features/data/schema.py` by `tierwise data schema`; a test keeps this file in step.",
        "Tables are Parquet folders under `<home>/data/tables/`; `orders` and `order_lines` are partitioned",
        "by month (`month=YYYY-MM/`), readable by DuckDB (`read_parquet(..., hive_partitioning = true)`)",
        "and Spark (`spark.read.parquet`). Required columns are filled by every source.",
    ]
    for table in ALL_TABLES.values():
        layout = "partitioned by month" if table.partitioned_by_month else "one folder"
        parts += [
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
    return "\n".join(parts) + "\n"
