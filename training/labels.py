"""What happened after each cutoff: the labels the three models learn, computed in one SQL pass.

For a cutoff `as_of` and a horizon of H days, over customers with an order before `as_of`:

- `churn`: 1 if the customer placed no order in [as_of, as_of + H).
- `value`: spend in [as_of, as_of + H) (0 for churners; 0 as well when returns outweigh purchases:
  a customer is worth no less than nothing, and the Tweedie objective refuses negative labels).
- `growth`: for customers *active* before the cutoff (at least one order in [as_of - H, as_of)), 1
  if in [as_of, as_of + H) they spend at least as much as in the H days before and grow clearly
  against that window on at least one of: frequency (orders at least 1.5x and at least 2 more),
  basket (spend per order at least 1.3x) or breadth (distinct departments, or categories where a
  dataset has no departments, at least 1.2x and at least 2 more); else 0. Customers with no order
  in the H days before the cutoff get no label (null): growth potential is the growth room of
  active customers, the P of RFMP, not a reactivation score (a lapsed customer "grows" from
  nothing, which made the old label call Dormant customers high potential). The thresholds sit
  above quarter-to-quarter noise and were chosen on the 2017-07-01 cutoff for a label that one
  active customer in three gets (36% on Complete Journey with H = 92), not nine in ten; the spend
  condition keeps a customer who only moved to fewer, larger baskets (or wider, thinner ones) from
  counting as growth. Frequency and basket are measured from orders alone; breadth only where
  order lines have products.
- `days_to_next_order`: days from `as_of` to the first order in the horizon (null when none).

`read_until` is the clock of a backtest: no order at or after it is read, and a cutoff whose
horizon would need one is refused.

Money is summed as DECIMAL: a DuckDB float sum depends on the order its threads meet the rows, so two
runs over the same orders could differ in the last bits, and a model trained on them could differ.

A `CustomerSample` keeps a seeded share of the customers at each cutoff (for data too large to learn
from in full): a customer is in or out by a hash of the seed and their id, so at every cutoff, in
every run and on either engine, the same customers are in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pandas as pd

from features.errors import InputError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

#: Growth (see the module docstring): orders at least this many times the previous window's ...
GROWTH_ORDERS_RATIO = 1.5
#: ... and at least this many more orders (one more order is noise for a customer of 3 a quarter);
GROWTH_ORDERS_GAIN = 2
#: or spend per order at least this many times the previous window's;
GROWTH_BASKET_RATIO = 1.3
#: or distinct departments (categories) at least this many times the previous window's ...
GROWTH_BREADTH_RATIO = 1.2
#: ... and at least this many more (departments count ~8 a quarter, categories ~50: the ratio binds
#: for categories, the gain for departments).
GROWTH_BREADTH_GAIN = 2


#: Hex digits of the customer hash compared with the share (16^12 steps: finer than any share used).
SAMPLE_HEX_DIGITS = 12


@dataclass(frozen=True)
class CustomerSample:
    """A seeded share of customers: those whose hash falls below `share`.

    The hash is the MD5 of `"<seed>:<customer_id>"`, its first `SAMPLE_HEX_DIGITS` hex digits read as
    a fraction of 16^12; DuckDB, Spark and Python compute the same digits, compared as text.

    Attributes:
        share: Fraction of customers kept, above 0 and below 1.
        seed: Which sample; another seed draws customers independently of this one.
        keep_all: Cutoffs whose customers are all kept (a run's test cutoff, to judge a sampled
            model on everyone: `pipelines.train.train(test_on_all=True)`).
    """

    share: float
    seed: int = 0
    keep_all: tuple[date, ...] = ()

    def __post_init__(self) -> None:
        if not 0 < self.share < 1:
            raise ValueError(f"sample share {self.share!r}: expected above 0 and below 1")

    @property
    def threshold(self) -> str:
        """The hash prefix below which a customer is in, as lower-case hex."""
        return f"{int(self.share * 16**SAMPLE_HEX_DIGITS):0{SAMPLE_HEX_DIGITS}x}"

    def contains(self, customer_ids: Sequence[str]) -> np.ndarray:
        """Whether each customer is in the sample (at a cutoff not in `keep_all`)."""
        prefix = f"{self.seed}:"
        return np.array(
            [
                hashlib.md5((prefix + str(c)).encode()).hexdigest()[:SAMPLE_HEX_DIGITS] < self.threshold
                for c in customer_ids
            ],
            dtype=bool,
        )

    def sql(self, customer: str, as_of: str) -> str:
        """A SQL condition (DuckDB's dialect, translated for Spark) true for the rows kept."""
        hashed = f"substr(md5(concat('{int(self.seed)}:', {customer})), 1, {SAMPLE_HEX_DIGITS})"
        kept = f"{hashed} < '{self.threshold}'"
        if not self.keep_all:
            return kept
        dates = ", ".join(f"TIMESTAMPTZ '{d.isoformat()}'" for d in self.keep_all)
        return f"({as_of} IN ({dates}) OR {kept})"


def _exact_sum(column: str) -> str:
    """A sum that does not depend on the order rows are added in (DECIMAL), as DOUBLE."""
    return f"CAST(sum(CAST({column} AS DECIMAL(38, 6))) AS DOUBLE)"


def label_sql(
    cutoffs: list[date],
    horizon_days: int,
    read_until: date,
    with_categories: bool,
    breadth: str = "department",
    sample: CustomerSample | None = None,
) -> str:
    """SQL over the canonical views `orders`, `order_lines`, `products` returning one row per eligible
    (customer, cutoff) with `churn`, `value`, `growth`, `days_to_next_order`, `spend_prev` (only the
    customers in `sample` at cutoffs it samples)."""
    values = ", ".join(f"(TIMESTAMPTZ '{d.isoformat()}')" for d in cutoffs)
    until = f"TIMESTAMPTZ '{read_until.isoformat()}'"
    wider = "FALSE"
    breadth_cte = ""
    if with_categories:
        breadth_cte = f""",
    bought AS (
        SELECT DISTINCT l.customer_id, p.{breadth} AS grouping, l.ordered_at
        FROM order_lines l JOIN products p USING (product_id)
        WHERE p.{breadth} IS NOT NULL AND l.ordered_at < {until}
    ),
    breadth AS (
        SELECT c.as_of, b.customer_id,
               count(DISTINCT b.grouping) FILTER (WHERE b.ordered_at < c.as_of) AS groupings_prev,
               count(DISTINCT b.grouping) FILTER (WHERE b.ordered_at >= c.as_of) AS groupings_next
        FROM bought b JOIN cut c
          ON b.ordered_at >= c.as_of - INTERVAL {horizon_days} DAY
         AND b.ordered_at < c.as_of + INTERVAL {horizon_days} DAY
        GROUP BY ALL
    )"""
        wider = f"""coalesce(w.groupings_next, 0) >= greatest(
                      {GROWTH_BREADTH_RATIO} * coalesce(w.groupings_prev, 0),
                      coalesce(w.groupings_prev, 0) + {GROWTH_BREADTH_GAIN})"""
    join_breadth = "LEFT JOIN breadth w USING (as_of, customer_id)" if with_categories else ""
    orders_next, spend_next = "coalesce(a.orders_next, 0)", "coalesce(a.spend_next, 0)"
    grows = f"""{spend_next} >= b.spend_prev AND (
                  {orders_next} >= greatest({GROWTH_ORDERS_RATIO} * b.orders_prev,
                                            b.orders_prev + {GROWTH_ORDERS_GAIN})
                  OR ({orders_next} > 0
                      AND {spend_next} / {orders_next} >= {GROWTH_BASKET_RATIO} * b.spend_prev / b.orders_prev)
                  OR {wider})"""
    return f"""
    WITH cut AS (SELECT * FROM (VALUES {values}) v(as_of)),
    known AS (SELECT * FROM orders WHERE ordered_at < {until}),
    eligible AS (
        SELECT c.as_of, o.customer_id FROM known o JOIN cut c ON o.ordered_at < c.as_of GROUP BY ALL
    ),
    ahead AS (
        SELECT c.as_of, o.customer_id, count(*) AS orders_next, {_exact_sum("o.amount")} AS spend_next,
               min(o.ordered_at) AS first_next
        FROM known o JOIN cut c
          ON o.ordered_at >= c.as_of AND o.ordered_at < c.as_of + INTERVAL {horizon_days} DAY
        GROUP BY ALL
    ),
    behind AS (
        SELECT c.as_of, o.customer_id, count(*) AS orders_prev, {_exact_sum("o.amount")} AS spend_prev
        FROM known o JOIN cut c
          ON o.ordered_at < c.as_of AND o.ordered_at >= c.as_of - INTERVAL {horizon_days} DAY
        GROUP BY ALL
    ){breadth_cte}
    SELECT e.customer_id, e.as_of AS event_timestamp,
           CAST(a.orders_next IS NULL AS INTEGER) AS churn,
           greatest(coalesce(a.spend_next, 0.0), 0.0) AS value,
           CASE WHEN b.orders_prev IS NOT NULL THEN CAST({grows} AS INTEGER) END AS growth,
           (epoch_us(a.first_next) - epoch_us(e.as_of)) / CAST(86400000000 AS DOUBLE) AS days_to_next_order,
           coalesce(b.spend_prev, 0.0) AS spend_prev
    FROM eligible e
    LEFT JOIN ahead a USING (as_of, customer_id)
    LEFT JOIN behind b USING (as_of, customer_id)
    {join_breadth}
    {"" if sample is None else "WHERE " + sample.sql("e.customer_id", "e.as_of")}
    ORDER BY event_timestamp, customer_id
    """


def is_active(days_since_last_order: np.ndarray, horizon_days: int) -> np.ndarray:
    """Whether each customer is eligible for the growth label, from the feature
    `days_since_last_order`: an order in [as_of - H, as_of) is at most H days old. Unknown recency
    counts as not active (no growth potential is answered without knowing it)."""
    days = np.asarray(days_since_last_order, dtype=float)
    return np.nan_to_num(days, nan=np.inf) <= horizon_days


def outcome_end(last_order: datetime, as_of: date, horizon_days: int, what: str = "backtest") -> date:
    """The day a horizon after `as_of` ends, checked against the data: a backtest needs that future.

    Raises:
        InputError: the data ends before the horizon does (saying until when orders are needed).
    """
    needed = as_of + timedelta(days=horizon_days)
    if last_order.date() + timedelta(days=1) < needed:
        raise InputError(
            f"a {horizon_days}-day {what} as of {as_of} needs orders until {needed}; the data ends {last_order.date()}"
        )
    return needed


def compute_labels(
    con: duckdb.DuckDBPyConnection,
    cutoffs: list[date],
    horizon_days: int,
    read_until: date,
    with_categories: bool,
    sample: CustomerSample | None = None,
) -> pd.DataFrame:
    """Labels for every customer with an order before each cutoff (canonical views must be registered);
    `growth` is NaN for customers without an order in the horizon before the cutoff (see `labelled`).
    With a `sample`, only its customers at the cutoffs it samples.

    Raises:
        InputError: a cutoff's horizon reaches past `read_until` (its label is not known yet).
    """
    return _labels(
        lambda sql: con.execute(sql).df(), cutoffs, horizon_days, read_until, with_categories, sample
    )


def compute_labels_on_spark(
    spark: SparkSession,
    cutoffs: list[date],
    horizon_days: int,
    read_until: date,
    with_categories: bool,
    sample: CustomerSample | None = None,
) -> pd.DataFrame:
    """`compute_labels` run by Spark (the same query, `features.data.dialects.to_spark`) over the
    views `features.spark_session.register_canonical_views` made."""
    from features.data.dialects import to_spark

    return _labels(
        lambda sql: spark.sql(to_spark(sql)).toPandas(),
        cutoffs,
        horizon_days,
        read_until,
        with_categories,
        sample,
    )


def _labels(
    frame_of: Callable[[str], pd.DataFrame],
    cutoffs: list[date],
    horizon_days: int,
    read_until: date,
    with_categories: bool,
    sample: CustomerSample | None = None,
) -> pd.DataFrame:
    late = [d for d in cutoffs if d + timedelta(days=horizon_days) > read_until]
    if late:
        raise InputError(
            f"cutoff {late[0]} + {horizon_days} days ends after {read_until}: its outcome is not known yet"
        )
    has_departments = with_categories and bool(
        len(frame_of("SELECT 1 AS found FROM products WHERE department IS NOT NULL LIMIT 1"))
    )
    breadth = "department" if has_departments else "category"
    frame = frame_of(label_sql(cutoffs, horizon_days, read_until, with_categories, breadth, sample))
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True).astype(
        "datetime64[us, UTC]"
    )
    frame["churn"] = frame["churn"].astype("int32")
    # NaN, not pandas' NA, for "no growth label": every reader of labels takes them as float arrays.
    frame["growth"] = frame["growth"].astype("float64")
    return frame


def labelled(labels: pd.DataFrame, label: str) -> pd.DataFrame:
    """The rows of `labels` whose `label` is known: a model learns and is judged only on the customers
    it speaks for (growth: the customers active before the cutoff).

    Args:
        labels: As `compute_labels` returns them.
        label: A label column (`features.model_table.ModelEntry.label`).
    """
    known = labels[label].notna()
    return labels if known.all() else labels[known.to_numpy()].reset_index(drop=True)
