"""Feast's Spark offline store on the Spark engine: the same training sets as DuckDB's store.

On `engine="spark"` the home registers its snapshot files as `SparkSource`s and Feast joins training
sets with its (community-maintained) Spark offline store, in the engine's own session. Spark runs in
local mode in this process (Java 17 from Debian; CI installs it).
"""

from __future__ import annotations

import dataclasses
from datetime import date

import pandas as pd
import pytest
from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource

from features import feature_store
from features.settings import Settings
from pipelines import build_features
from tests.conftest import copy_home

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("java")]

CUTOFFS = [date(2017, 9, 3), date(2017, 10, 1)]


@pytest.fixture(scope="module")
def duck_home(cj_slice_home: Settings, tmp_path_factory) -> Settings:
    """The slice with snapshots at two cutoffs, registered for DuckDB."""
    settings = copy_home(cj_slice_home, tmp_path_factory.mktemp("feast-spark") / "home")
    build_features.build(settings, CUTOFFS)
    feature_store.apply(settings)
    return settings


def entity_rows(settings: Settings) -> pd.DataFrame:
    """Customers of the first cutoff at both cutoffs, newest first, with a label to pass through."""
    ids = sorted(
        pd.read_parquet(settings.feature_snapshots.path(CUTOFFS[0]), columns=["customer_id"]).customer_id
    )
    ids = ids[:60]
    return pd.DataFrame(
        {
            "customer_id": ids * 2,
            "event_timestamp": [pd.Timestamp(day, tz="UTC") for day in CUTOFFS[::-1] for _ in ids],
            "label": range(2 * len(ids)),
        }
    )


def test_spark_store_joins_the_training_set_duckdb_joins(duck_home: Settings):
    rows = entity_rows(duck_home)
    expected = feature_store.training_frame(duck_home, rows, "churn")

    spark = dataclasses.replace(duck_home, engine="spark")
    store = feature_store.apply(spark)
    actual = feature_store.training_frame(spark, rows, "churn")

    assert isinstance(store.get_data_source("customer_snapshots"), SparkSource)
    assert store.config.offline_store.type == "spark"
    pd.testing.assert_frame_equal(actual, expected)


def test_registering_for_duckdb_again_gives_back_its_file_sources(duck_home: Settings, tmp_path):
    home = copy_home(duck_home, tmp_path / "home")
    feature_store.apply(dataclasses.replace(home, engine="spark"))
    store = feature_store.apply(home)

    assert not isinstance(store.get_data_source("customer_snapshots"), SparkSource)
    frame = feature_store.training_frame(home, entity_rows(home), "churn")
    assert frame["label"].tolist() == list(range(len(frame)))
