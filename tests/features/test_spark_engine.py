"""The Spark engine: the same feature query, the same snapshot files, the same numbers as DuckDB.

Exact for counts and texts, within 1e-9 relative for other numbers (the issue's bar), on the Complete
Journey slice, the same shop reduced to orders only, and a seeded synthetic shop. Spark runs in local
mode in this process (Java 17 from Debian; CI installs it).
"""

from __future__ import annotations

import dataclasses
import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from features.catalog import FEATURES
from features.data.store import DataStore
from features.data.synth import generate
from features.settings import Settings
from pipelines import build_features
from tests.conftest import copy_home

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("java")]

#: Several cutoffs, so one pass computes more than one (and the files must be split by cutoff).
CJ_CUTOFFS = [date(2017, 3, 5), date(2017, 9, 3), date(2017, 10, 1), date(2018, 1, 2)]
COUNTS = {
    f.name
    for f in FEATURES
    if f.name.startswith(
        (
            "orders_",
            "active_weeks",
            "new_",
            "categories_",
            "departments_",
            "coupon_redemptions",
            "campaigns_received",
        )
    )
}


def on(engine: str, settings: Settings, target: Path) -> Settings:
    """A private copy of `settings`' home that runs its batch steps on `engine`."""
    return dataclasses.replace(copy_home(settings, target), engine=engine)


def assert_same_snapshots(duck: Settings, spark: Settings, cutoffs: list[date]) -> None:
    for cutoff in cutoffs:
        expected = pq.read_table(duck.feature_snapshots.path(cutoff))
        actual = pq.read_table(spark.feature_snapshots.path(cutoff))
        assert actual.schema.names == expected.schema.names
        assert [f.type for f in actual.schema] == [f.type for f in expected.schema], cutoff
        left, right = expected.to_pandas(), actual.to_pandas()
        assert right["customer_id"].tolist() == left["customer_id"].tolist(), cutoff
        assert (right["event_timestamp"] == left["event_timestamp"]).all()
        for column in left.columns[2:]:
            want, got = left[column], right[column]
            assert (want.isna() == got.isna()).all(), f"{cutoff} {column}: NULLs differ"
            want, got = want.dropna(), got.dropna()
            if want.dtype == object or column in COUNTS:
                assert got.tolist() == want.tolist(), f"{cutoff} {column}"
            else:
                np.testing.assert_allclose(got, want, rtol=1e-9, atol=0, err_msg=f"{cutoff} {column}")


def build_on_both(settings: Settings, tmp_path: Path, cutoffs: list[date]) -> tuple[Settings, Settings]:
    duck, spark = on("duckdb", settings, tmp_path / "duck"), on("spark", settings, tmp_path / "spark")
    duck_rows = build_features.build(duck, cutoffs)
    spark_rows = build_features.build(spark, cutoffs)
    assert spark_rows == duck_rows
    return duck, spark


def assert_same_derived_tables(duck_version: Path, spark_version: Path) -> None:
    from features.data.schema import DERIVED_TABLES

    for name, table in DERIVED_TABLES.items():
        assert {p.suffix for p in (spark_version / name).iterdir()} == {".parquet"}, name
        key = list(table.key)
        want = pq.read_table(duck_version / name).to_pandas().sort_values(key, ignore_index=True)
        got = pq.read_table(spark_version / name).to_pandas().sort_values(key, ignore_index=True)
        assert list(got.columns) == list(want.columns) == table.column_names
        assert len(got) == len(want), name
        for column in want.columns:
            if want[column].dtype.kind == "f":
                np.testing.assert_allclose(
                    got[column], want[column], rtol=1e-9, atol=0, err_msg=f"{name}.{column}"
                )
            else:
                assert got[column].tolist() == want[column].tolist(), f"{name}.{column}"


@dataclasses.dataclass(frozen=True)
class BuiltOnBoth:
    """The slice's snapshots of `CJ_CUTOFFS`, built once on each engine (each in its own copy of the
    home), and the rows per cutoff each build reported."""

    duck: Settings
    spark: Settings
    duck_rows: dict[date, int]
    spark_rows: dict[date, int]


@pytest.fixture(scope="module")
def cj_on_both(cj_slice_home, tmp_path_factory) -> BuiltOnBoth:
    """Read-only: a test that builds again works on a copy (`on`)."""
    folder = tmp_path_factory.mktemp("cj_on_both")
    duck, spark = on("duckdb", cj_slice_home, folder / "duck"), on("spark", cj_slice_home, folder / "spark")
    return BuiltOnBoth(
        duck, spark, build_features.build(duck, CJ_CUTOFFS), build_features.build(spark, CJ_CUTOFFS)
    )


@pytest.fixture(scope="module")
def spark_import(cj_slice_dir, tmp_path_factory) -> Settings:
    """The slice imported on the Spark engine (its derived tables written by Spark), as
    `cj_slice_home` is the slice imported on DuckDB. Read-only."""
    from pipelines.import_data import import_completejourney

    home = tmp_path_factory.mktemp("spark_import") / "home"
    settings = dataclasses.replace(Settings.resolve(home), engine="spark")
    import_completejourney(settings, cj_slice_dir)
    return settings


def test_spark_writes_the_same_snapshots_as_duckdb_on_complete_journey(cj_on_both):
    assert cj_on_both.spark_rows == cj_on_both.duck_rows
    assert_same_snapshots(cj_on_both.duck, cj_on_both.spark, CJ_CUTOFFS)


def test_spark_gives_the_same_nulls_as_duckdb_on_orders_only_data(orders_only_home, tmp_path):
    duck, spark = build_on_both(orders_only_home, tmp_path, CJ_CUTOFFS[1:3])
    snapshot = spark.feature_snapshots.read(CJ_CUTOFFS[1])
    assert snapshot["categories_90d"].isna().all() and snapshot["income_band"].isna().all()
    assert_same_snapshots(duck, spark, CJ_CUTOFFS[1:3])


def test_spark_writes_the_same_snapshots_as_duckdb_on_a_seeded_synthetic_shop(tmp_path):
    home = Settings.resolve(tmp_path / "synth")
    generate(DataStore(home.data_dir), 600, seed=11, start=date(2024, 1, 1), days=240, chunk_customers=300)
    cutoffs = [date(2024, 5, 1), date(2024, 8, 1)]
    duck, spark = build_on_both(home, tmp_path, cutoffs)
    assert_same_snapshots(duck, spark, cutoffs)


def test_a_rebuilt_spark_snapshot_replaces_the_file_and_leaves_no_staging_behind(cj_on_both, tmp_path):
    spark = on("spark", cj_on_both.spark, tmp_path / "spark")
    cutoff = CJ_CUTOFFS[2]
    first = spark.feature_snapshots.path(cutoff).stat().st_ino
    again = build_features.build(spark, [cutoff])
    assert again == {cutoff: cj_on_both.spark_rows[cutoff]}
    assert spark.feature_snapshots.path(cutoff).stat().st_ino != first
    assert sorted(p.name for p in spark.snapshots_dir.iterdir()) == [f"{c}.parquet" for c in CJ_CUTOFFS]


def test_an_import_on_spark_writes_the_same_derived_tables_as_one_on_duckdb(cj_slice_home, spark_import):
    """In UTC, the time zone a shop has unless its import names one."""
    on_duckdb = DataStore(cj_slice_home.data_dir).live_version()
    assert_same_derived_tables(on_duckdb, DataStore(spark_import.data_dir).live_version())


def test_spark_writes_the_same_derived_tables_as_duckdb_in_a_shop_time_zone(cj_slice_home, tmp_path):
    from features.data.derived import write_derived_tables
    from features.data.duck import connect
    from features.data.shop import record_time_zone
    from features.live_data import open_live_data_on_spark
    from features.spark_derived import write_derived_tables as write_on_spark

    live = DataStore(cj_slice_home.data_dir).live_version()
    duck_version, spark_version = tmp_path / "duck", tmp_path / "spark"
    for version in (duck_version, spark_version):
        shutil.copytree(live, version)
        record_time_zone(version, "America/New_York")
    write_derived_tables(connect(), duck_version)
    write_on_spark(open_live_data_on_spark(cj_slice_home), spark_version)
    assert_same_derived_tables(duck_version, spark_version)


def test_an_import_on_spark_gives_the_same_features_as_one_on_duckdb(spark_import, cj_on_both, tmp_path):
    spark = on("spark", spark_import, tmp_path / "spark")
    build_features.build(spark, CJ_CUTOFFS[2:3])
    assert_same_snapshots(cj_on_both.duck, spark, CJ_CUTOFFS[2:3])
