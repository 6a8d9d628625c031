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
    if isinstance(node, exp.Anonymous) and node.name.upper() in _REWRITES:
        return _REWRITES[node.name.upper()](*(e.transform(_rename_functions) for e in node.expressions))
    if isinstance(node, exp.DayOfWeekIso):
        # sqlglot writes `DAYOFWEEK(x) % 7 + 1`, which counts from Sunday; Spark's WEEKDAY is 0 on Monday.
        return exp.Paren(
            this=exp.Add(
                this=exp.Anonymous(this="WEEKDAY", expressions=[node.this]), expression=exp.Literal.number(1)
            )
        )
    return node


def _is_finite(value: exp.Expression) -> exp.Expression:
    """`isfinite(x)`: neither NaN nor infinite (Spark has `isnan` only); NULL stays NULL."""
    infinite = exp.EQ(
        this=exp.Abs(this=value.copy()), expression=exp.cast(exp.Literal.string("Infinity"), "DOUBLE")
    )
    return exp.Not(
        this=exp.Paren(this=exp.or_(exp.Anonymous(this="ISNAN", expressions=[value.copy()]), infinite))
    )


def _wall_time_in_zone(zone: exp.Expression, timestamp: exp.Expression) -> exp.Expression:
    """`timezone(zone, timestamp)` of a timestamp without zone: that wall time in `zone`, as an instant."""
    return exp.Anonymous(this="TO_UTC_TIMESTAMP", expressions=[timestamp, zone])


def _try_strptime(text: exp.Expression, format_: exp.Expression) -> exp.Expression:
    """`try_strptime(text, format)`: Spark's `try_to_timestamp` with the format in Java's letters."""
    java = _SPARK.generator().format_time(exp.StrToTime(this=text, format=format_))
    return exp.Anonymous(this="TRY_TO_TIMESTAMP", expressions=[text, sqlglot.parse_one(java, read="spark")])


_SPARK = sqlglot.Dialect.get_or_raise("spark")
#: DuckDB functions whose Spark equivalent takes other arguments, with their translation.
_REWRITES = {"ISFINITE": _is_finite, "TIMEZONE": _wall_time_in_zone, "TRY_STRPTIME": _try_strptime}


def to_spark(duckdb_sql: str) -> str:
    """`duckdb_sql` in Spark SQL; raises if a construct has no Spark equivalent.

    Spark must run with the session time zone UTC (`spark.sql.session.timeZone`), as DuckDB does.
    """
    tree = sqlglot.parse_one(duckdb_sql, read="duckdb").transform(_rename_functions)
    return tree.sql(dialect="spark", pretty=True, unsupported_level=ErrorLevel.RAISE)
