"""The Feast store: training sets by point-in-time join, the same values online, clear errors."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features import feature_store
from features.catalog import FEATURES
from features.errors import InputError
from features.settings import Settings
from pipelines import build_features
from tests.conftest import copy_home

CUTOFFS = [date(2017, 9, 3), date(2017, 10, 1)]


@pytest.fixture(scope="module")
def feast_home(cj_slice_home: Settings, tmp_path_factory) -> Settings:
    """The slice with snapshots at two cutoffs, registered in Feast and the latest one online (SQLite)."""
    target = tmp_path_factory.mktemp("feast") / "home"
    settings = copy_home(cj_slice_home, target)
    build_features.build(settings, CUTOFFS)
    build_features.apply_and_materialize(settings)
    return settings


def customers_at(settings: Settings, day: date, n: int = 40) -> list[str]:
    frame = pd.read_parquet(settings.snapshots_dir / f"{day}.parquet", columns=["customer_id"])
    return sorted(frame["customer_id"])[:n]


def assert_same_values(left: pd.DataFrame, right: pd.DataFrame) -> None:
    for column in left.columns:
        a, b = left[column].to_numpy(dtype=object), right[column].to_numpy(dtype=object)
        for x, y in zip(a, b, strict=True):
            missing_x = x is None or (isinstance(x, float) and np.isnan(x))
            missing_y = y is None or (isinstance(y, float) and np.isnan(y))
            assert missing_x == missing_y and (missing_x or x == y), (column, x, y)


@pytest.mark.parametrize("service", ["churn", "customer_value", "growth_potential"])
def test_training_and_serving_read_identical_features(feast_home: Settings, service: str):
    ids = customers_at(feast_home, CUTOFFS[-1])
    rows = pd.DataFrame({"customer_id": ids, "event_timestamp": pd.Timestamp(CUTOFFS[-1], tz="UTC")})
    offline = feature_store.training_frame(feast_home, rows, service).drop(columns="event_timestamp")
    online = feature_store.online_features(feature_store.open_store(feast_home), ids, service)
    assert list(offline.columns) == list(online.columns)
    assert_same_values(offline.set_index("customer_id"), online.set_index("customer_id"))


def test_training_rows_get_the_snapshot_of_their_own_date_in_the_order_given(feast_home: Settings):
    ids = customers_at(feast_home, CUTOFFS[0], 5)
    rows = pd.DataFrame(
        {
            "customer_id": ids + ids[::-1],
            "event_timestamp": [pd.Timestamp(CUTOFFS[1], tz="UTC")] * 5
            + [pd.Timestamp(CUTOFFS[0], tz="UTC")] * 5,
        }
    )
    frame = feature_store.training_frame(feast_home, rows, "churn")
    assert list(frame["customer_id"]) == list(rows["customer_id"])
    snapshots = {
        d: pd.read_parquet(feast_home.snapshots_dir / f"{d}.parquet").set_index("customer_id")
        for d in CUTOFFS
    }
    for _, row in frame.iterrows():
        expected = snapshots[row["event_timestamp"].date()].loc[row["customer_id"], "days_since_last_order"]
        assert row["days_since_last_order"] == expected


def test_every_catalog_feature_is_served(feast_home: Settings):
    store = feature_store.open_store(feast_home)
    assert feature_store.service_feature_names(store, "churn") == [f.name for f in FEATURES]


def test_unknown_customer_comes_back_empty_online(feast_home: Settings):
    frame = feature_store.online_features(feature_store.open_store(feast_home), ["no-such-customer"], "churn")
    assert frame.drop(columns="customer_id").isna().all(axis=None)


def test_unknown_feature_service_is_refused_by_name(feast_home: Settings):
    rows = pd.DataFrame({"customer_id": ["1"], "event_timestamp": [pd.Timestamp(CUTOFFS[-1], tz="UTC")]})
    with pytest.raises(InputError, match="unknown feature service 'lifetime'"):
        feature_store.training_frame(feast_home, rows, "lifetime")
    with pytest.raises(InputError, match="unknown feature service 'lifetime'"):
        feature_store.feature_service(feature_store.open_store(feast_home), "lifetime")


def test_a_date_without_snapshot_is_refused_rather_than_joined_to_an_older_one(feast_home: Settings):
    rows = pd.DataFrame({"customer_id": ["1"], "event_timestamp": [pd.Timestamp("2017-09-10", tz="UTC")]})
    with pytest.raises(InputError, match="no feature snapshot for 2017-09-10"):
        feature_store.training_frame(feast_home, rows, "churn")


def test_materializing_a_missing_snapshot_date_is_refused(feast_home: Settings):
    with pytest.raises(InputError, match="no feature snapshot for 2017-09-10"):
        feature_store.materialize(feast_home, date(2017, 9, 10))


@pytest.mark.integration
def test_redis_online_store_serves_the_same_features(feast_home: Settings, redis_server: str, monkeypatch):
    monkeypatch.setenv("TIERWISE_ONLINE_STORE", "redis")
    monkeypatch.setenv("TIERWISE_REDIS", redis_server)
    settings = Settings.resolve(feast_home.home)
    assert settings.online_store == "redis"
    build_features.apply_and_materialize(settings)
    ids = customers_at(settings, CUTOFFS[-1], 20)
    from_redis = feature_store.online_features(feature_store.open_store(settings), ids, "churn")
    sqlite = feature_store.online_features(feature_store.open_store(feast_home), ids, "churn")
    assert_same_values(from_redis.set_index("customer_id"), sqlite.set_index("customer_id"))


def test_the_online_reader_reads_sqlite_like_feast(feast_home: Settings):
    from features.online_reader import OnlineFeatureReader

    store = feature_store.open_store(feast_home)
    ids = customers_at(feast_home, CUTOFFS[-1], 20)
    ids = [*ids, ids[0], "no-such-customer"]
    names = feature_store.service_feature_names(store, "churn")
    ours = OnlineFeatureReader(store, names).read_frame(ids)
    feast = feature_store.online_features(store, ids, "churn")
    pd.testing.assert_frame_equal(ours, feast[ours.columns], check_dtype=False)


def test_the_online_reader_reports_an_unknown_customer_as_not_found_on_sqlite(feast_home: Settings):
    from features.online_reader import OnlineFeatureReader

    store = feature_store.open_store(feast_home)
    known = customers_at(feast_home, CUTOFFS[-1], 1)[0]
    rows = OnlineFeatureReader(store, [f.name for f in FEATURES]).read([known, "no-such-customer"])
    assert rows.found.tolist() == [True, False] and rows.as_of[1] is None and rows.as_of[0] == CUTOFFS[-1]


@pytest.mark.integration
def test_the_online_reader_reports_an_unknown_customer_as_not_found_on_redis(
    feast_home: Settings, redis_server: str, monkeypatch
):
    from features.online_reader import OnlineFeatureReader

    monkeypatch.setenv("TIERWISE_ONLINE_STORE", "redis")
    monkeypatch.setenv("TIERWISE_REDIS", redis_server)
    settings = Settings.resolve(feast_home.home)
    build_features.apply_and_materialize(settings)
    reader = OnlineFeatureReader(feature_store.open_store(settings), [f.name for f in FEATURES])
    known = customers_at(settings, CUTOFFS[-1], 1)[0]
    for _ in range(3):  # the same answer however many reads the reader has made
        rows = reader.read([known, "no-such-customer"])
        assert rows.found.tolist() == [True, False] and rows.as_of[1] is None and rows.as_of[0] == CUTOFFS[-1]


@pytest.mark.integration
def test_the_online_reader_reads_redis_like_feast(feast_home: Settings, redis_server: str, monkeypatch):
    from features.online_reader import OnlineFeatureReader

    monkeypatch.setenv("TIERWISE_ONLINE_STORE", "redis")
    monkeypatch.setenv("TIERWISE_REDIS", redis_server)
    settings = Settings.resolve(feast_home.home)
    build_features.apply_and_materialize(settings)
    store = feature_store.open_store(settings)
    ids = [*customers_at(settings, CUTOFFS[-1], 20), "no-such-customer"]
    names = feature_store.service_feature_names(store, "churn")
    ours = OnlineFeatureReader(store, names).read_frame(ids)
    feast = feature_store.online_features(store, ids, "churn")
    pd.testing.assert_frame_equal(ours, feast[ours.columns], check_dtype=False)


def test_a_reader_sees_the_old_date_whole_until_materialize_switches_to_the_new_one(
    feast_home: Settings, tmp_path: Path
):
    from features.online_reader import OnlineFeatureReader

    settings = copy_home(feast_home, tmp_path / "home")
    reader = OnlineFeatureReader(feature_store.open_store(settings), [f.name for f in FEATURES])
    ids = customers_at(settings, CUTOFFS[0])
    seen_during: list[set] = []

    def read_mid_write(done: int, total: int) -> None:
        rows = reader.read(ids)
        seen_during.append({d for d, found in zip(rows.as_of, rows.found, strict=True) if found})

    feature_store.materialize(settings, CUTOFFS[0], chunk_rows=50, on_chunk=read_mid_write)
    assert len(seen_during) > 1 and all(dates == {CUTOFFS[-1]} for dates in seen_during)
    after = reader.read(ids)
    assert after.found.all() and set(after.as_of) == {CUTOFFS[0]}
    expected = pd.read_parquet(settings.snapshots_dir / f"{CUTOFFS[0]}.parquet").set_index("customer_id")
    assert after.columns["orders_365d"] == expected.loc[ids, "orders_365d"].tolist()


@pytest.mark.integration
def test_on_redis_an_answer_carries_the_oldest_date_it_read_for_a_customer(
    feast_home: Settings, redis_server: str, monkeypatch
):
    """A customer caught between two views of a switch is reported at the older date, not the newer."""
    from features.catalog import VIEWS, view_features
    from features.feature_repo import view_name
    from features.online_reader import OnlineFeatureReader

    monkeypatch.setenv("TIERWISE_ONLINE_STORE", "redis")
    monkeypatch.setenv("TIERWISE_REDIS", redis_server)
    settings = Settings.resolve(feast_home.home)
    build_features.apply_and_materialize(settings)
    store = feature_store.open_store(settings)
    customer = customers_at(settings, CUTOFFS[-1], 1)[0]
    row = pd.read_parquet(settings.snapshots_dir / f"{CUTOFFS[-1]}.parquet").query("customer_id == @customer")
    newer = row.assign(event_timestamp=pd.Timestamp("2017-10-29", tz="UTC"))
    first_view = VIEWS[0]
    columns = ["customer_id", "event_timestamp", *(f.name for f in view_features(first_view))]
    store.write_to_online_store(view_name(first_view), newer[columns])
    rows = OnlineFeatureReader(store, [f.name for f in FEATURES]).read([customer])
    assert rows.as_of == [CUTOFFS[-1]]
