"""Exact ranks and order statistics of a numeric column of a Spark DataFrame, with no task and no
driver holding the whole column.

The column's distinct values are counted (`groupBy`: equal values become one row however many rows
share them) and cut into buckets at bounds taken once, on the driver, from Spark's approximate
quantiles: the bounds only balance the buckets, no answer depends on them. How many values lie below
each bucket is a prefix sum of the bucket totals (one number per bucket), on the driver. Then one task
per bucket ranks the bucket's distinct values. A value's bucket is a function of the value, so a stage
Spark computes again finds the same buckets (its own range partitioning samples again and may not:
see `DataFrame.repartitionByRange`).

Missing values (null and NaN) are not ranked, as pandas ranks no NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F


@dataclass(frozen=True)
class DistinctValues:
    """A column's distinct values in buckets.

    Attributes:
        frame: value (double), n (rows holding it), bucket (0 = lowest values).
        below: Per bucket, the values (rows) in the buckets below it.
        sizes: Per bucket, its values (rows).
    """

    frame: DataFrame
    below: tuple[int, ...]
    sizes: tuple[int, ...]

    @property
    def count(self) -> int:
        """Known (non-missing) values."""
        return sum(self.sizes)


def distinct_values(frame: DataFrame, column: str, buckets: int) -> DistinctValues:
    """The distinct values of `frame[column]` (as doubles) with their counts, in about `buckets`
    buckets of similar numbers of distinct values."""
    value = F.col(column).cast("double")
    counted = (
        frame.select(value.alias("value"))
        .where(F.col("value").isNotNull() & ~F.isnan("value"))
        .groupBy("value")
        .agg(F.count(F.lit(1)).alias("n"))
    )
    bounds: list[float] = []
    if buckets > 1:
        probabilities = [i / buckets for i in range(1, buckets)]
        bounds = sorted(set(counted.approxQuantile("value", probabilities, 1 / (4 * buckets))))
    if bounds:
        edges = F.array(*[F.lit(float(bound)) for bound in bounds])
        bucket = F.size(F.filter(edges, lambda edge: edge <= F.col("value")))
    else:
        bucket = F.lit(0)
    bucketed = counted.withColumn("bucket", bucket.cast("int"))
    totals = dict(bucketed.groupBy("bucket").agg(F.sum("n")).collect())
    sizes = tuple(int(totals.get(b, 0)) for b in range(len(bounds) + 1))
    below = tuple(int(b) for b in np.cumsum((0, *sizes[:-1])))
    return DistinctValues(bucketed, below, sizes)


def average_ranks(values: DistinctValues) -> DataFrame:
    """Each distinct value's rank among all values, 1 for the lowest, equal values sharing their mean
    rank (pandas' `rank(method="average")`, to the last bit): value, rank."""
    below = values.below

    def rank(bucket: pd.DataFrame) -> pd.DataFrame:
        bucket = bucket.sort_values("value")
        first = below[int(bucket.bucket.iat[0])]
        before = first + bucket.n.cumsum() - bucket.n
        return pd.DataFrame({"value": bucket.value, "rank": before + (bucket.n + 1) / 2})

    return values.frame.groupBy("bucket").applyInPandas(rank, "value double, rank double")


def smallest(values: DistinctValues, positions: np.ndarray) -> np.ndarray:
    """The values at 0-based `positions` of the ascending order of all values (order statistics);
    the driver reads the distinct values of only the buckets holding them."""
    positions = np.asarray(positions, dtype=np.int64)
    if ((positions < 0) | (positions >= values.count)).any():
        raise IndexError(f"positions {positions.tolist()} outside 0..{values.count - 1}")
    ends = np.cumsum(values.sizes)
    found = np.empty(len(positions), dtype=float)
    in_bucket = np.searchsorted(ends, positions, side="right")
    for bucket in np.unique(in_bucket):
        rows = (
            values.frame.where(F.col("bucket") == int(bucket))
            .select("value", "n")
            .toPandas()
            .sort_values("value")
        )
        last = values.below[bucket] + rows.n.cumsum().to_numpy()
        mine = in_bucket == bucket
        found[mine] = rows.value.to_numpy()[np.searchsorted(last, positions[mine], side="right")]
    return found
