"""Exact ranks and order statistics on Spark equal pandas' on one frame, however the values are bucketed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.settings import Settings
from features.spark_ranks import average_ranks, distinct_values, smallest
from features.spark_session import spark_session

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("java")]


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    return spark_session(Settings.resolve(tmp_path_factory.mktemp("spark_ranks")))


def values() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    continuous = rng.lognormal(2, 1, 700)
    ties = rng.integers(0, 12, 700).astype(float)
    missing = np.where(rng.random(700) < 0.1, np.nan, continuous)
    return pd.DataFrame({"id": np.arange(700), "continuous": continuous, "ties": ties, "missing": missing})


@pytest.mark.parametrize("buckets", [1, 2, 7])
@pytest.mark.parametrize("column", ["continuous", "ties", "missing"])
def test_average_ranks_and_order_statistics_equal_pandas(spark, column, buckets):
    local = values()
    frame = spark.createDataFrame(local).repartition(3)
    counted = distinct_values(frame, column, buckets)
    known = local[column].dropna().sort_values().to_numpy()
    assert counted.count == len(known)
    ranks = average_ranks(counted).toPandas().set_index("value")["rank"]
    expected = local[column].rank(method="average")
    got = local[column].map(ranks)
    assert got.isna().equals(expected.isna())
    assert (got.dropna() == expected.dropna()).all()  # to the last bit
    positions = np.array([0, 5, len(known) // 2, len(known) - 1])
    assert smallest(counted, positions).tolist() == known[positions].tolist()
