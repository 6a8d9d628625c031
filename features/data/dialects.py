"""The one translation of Tierwise's SQL from DuckDB's dialect to Spark's.

Every query is written once, in DuckDB's dialect (the embedded engine), and sqlglot writes it for
Spark. sqlglot maps almost everything; the functions it passes through unchanged that Spark does not
know, or maps wrongly (ISO day of week), are mapped here, in one place, so a query never needs a
second hand-kept text.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel

#: DuckDB functions sqlglot leaves as they are, with the Spark function of the same meaning.
SPARK_FUNCTIONS = {"EPOCH_US": "UNIX_MICROS"}


def _rename_functions(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Anonymous) and node.name.upper() in SPARK_FUNCTIONS:
        return exp.Anonymous(this=SPARK_FUNCTIONS[node.name.upper()], expressions=node.expressions)
    if isinstance(node, exp.DayOfWeekIso):
        # sqlglot writes `DAYOFWEEK(x) % 7 + 1`, which counts from Sunday; Spark's WEEKDAY is 0 on Monday.
        return exp.Paren(
            this=exp.Add(
                this=exp.Anonymous(this="WEEKDAY", expressions=[node.this]), expression=exp.Literal.number(1)
            )
        )
    return node


def to_spark(duckdb_sql: str) -> str:
    """`duckdb_sql` in Spark SQL; raises if a construct has no Spark equivalent.

    Spark must run with the session time zone UTC (`spark.sql.session.timeZone`), as DuckDB does.
    """
    tree = sqlglot.parse_one(duckdb_sql, read="duckdb").transform(_rename_functions)
    return tree.sql(dialect="spark", pretty=True, unsupported_level=ErrorLevel.RAISE)
