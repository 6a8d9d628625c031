"""Feature jobs: build snapshots at cutoff dates, register the Feast repository, load the online store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pandas as pd

from features.customer_features import habit_profile_sql
from features.live_data import open_live_data
from features.settings import Settings
from features.snapshots import (
    DataPeriod,
    build_snapshots,
    capabilities,
    check_cutoffs,
    data_period,
)
from pipelines.home_lock import writes_home


def period(settings: Settings) -> DataPeriod:
    """First and last order of the imported data."""
    return data_period(open_live_data(settings))


@writes_home
def build(
    settings: Settings, cutoffs: list[date], on_progress: Callable[[int, int], None] | None = None
) -> dict[date, int]:
    """Compute and write feature snapshots for `cutoffs` (checked against the data's period), on the
    engine of `settings` (DuckDB or Spark: the same query, the same files)."""
    if settings.engine == "spark":
        from features import spark_snapshots
        from features.live_data import open_live_data_on_spark

        spark = open_live_data_on_spark(settings)
        chosen = check_cutoffs(cutoffs, spark_snapshots.data_period(spark))
        return spark_snapshots.build_snapshots(spark, chosen, settings.snapshots_dir, on_progress=on_progress)
    con = open_live_data(settings)
    chosen = check_cutoffs(cutoffs, data_period(con))
    return build_snapshots(con, chosen, settings.snapshots_dir, capabilities(con), on_progress=on_progress)


@writes_home
def features_at(settings: Settings, day: date) -> pd.DataFrame:
    """Every customer's features at `day`, built first when the home has no snapshot for it."""
    if day not in settings.feature_snapshots.dates():
        build(settings, [day])
    return settings.feature_snapshots.read(day)


@writes_home
def apply_and_materialize(
    settings: Settings, as_of: date | None = None, on_chunk: Callable[[int, int], None] | None = None
) -> tuple[date, int]:
    """Register the Feast definitions, then load a snapshot (default: the latest) into the online store."""
    from features import feature_store

    feature_store.apply(settings)
    return feature_store.materialize(settings, as_of, on_chunk=on_chunk)


def habit_profiles(settings: Settings, as_of: date, customers: list[str] | None = None) -> pd.DataFrame:
    """Weekday and department profiles (`features.customer_features.habit_profile_sql`) as of `as_of`,
    for `customers` or everyone: customer_id, kind, key, share."""
    from features.data.duck import joins_as_written, sql_string

    con = open_live_data(settings)
    check_cutoffs([as_of], data_period(con))
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE cutoffs AS SELECT {sql_string(as_of.isoformat())}::TIMESTAMPTZ AS as_of"
    )
    query = habit_profile_sql(capabilities(con))
    if customers:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE wanted AS SELECT unnest(?::VARCHAR[]) AS customer_id", [customers]
        )
        query = f"SELECT * FROM ({query}) WHERE customer_id IN (SELECT customer_id FROM wanted)"
    with joins_as_written(con):
        profiles = con.execute(query).df()
    return profiles.drop(columns="as_of")
