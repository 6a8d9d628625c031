"""The bulk online load (`features.online_writer`) on SQLite and on Redis: the bytes Feast's own
`materialize` writes, the snapshot it loads made live, unknown customers not found."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features import feature_store
from features.catalog import FEATURES, VIEWS, view_features
from features.errors import InputError
from features.feature_repo import ANSWER_VIEW, JOIN_KEY, PROJECT, view_name
from features.online_reader import OnlineFeatureReader
from features.settings import Settings
from pipelines import build_features
from tests.conftest import copy_home

CUTOFFS = [date(2017, 9, 3), date(2017, 10, 1)]
STORES = ["sqlite", pytest.param("redis", marks=pytest.mark.integration)]
#: Values whose encoding is easy to get wrong: signed zero, NaN, infinities, extremes, text.
ODD_FLOATS = [-0.0, 0.0, np.nan, np.inf, -np.inf, 1e300, 5e-324, 0.1 + 0.2, 12.0]
ODD_STRINGS = ["", "Zürich — 北京", None]


@pytest.fixture(scope="module")
def snapshots_home(cj_slice_home: Settings, tmp_path_factory) -> Settings:
    """The slice with snapshots at two cutoffs; the latest carries odd values in its first rows."""
    target = tmp_path_factory.mktemp("online-load") / "home"
    settings = copy_home(cj_slice_home, target)
    build_features.build(settings, CUTOFFS)
    path = settings.snapshots_dir / f"{CUTOFFS[-1]}.parquet"
    frame = pd.read_parquet(path)
    frame.loc[: len(ODD_FLOATS) - 1, "spend_30d"] = ODD_FLOATS
    frame["age_band"] = frame["age_band"].astype(object)
    frame.loc[: len(ODD_STRINGS) - 1, "age_band"] = ODD_STRINGS
    frame.to_parquet(path, index=False)
    return settings


def home_on(source: Settings, folder: Path, store: str, redis: str | None, db: int = 0) -> Settings:
    """A private copy of `source` using `store`, registered in Feast (on Redis: database `db`)."""
    copied = copy_home(source, folder)
    settings = Settings(copied.home, store, f"{redis},db={db}" if redis else "127.0.0.1:6379")
    feature_store.apply(settings)
    return settings


@pytest.fixture(params=STORES)
def store(request) -> tuple[str, str | None]:
    """The online store type, and a Redis address when it is Redis."""
    if request.param == "sqlite":
        return "sqlite", None
    return "redis", request.getfixturevalue("redis_server")


def plain_feast_materialize(settings: Settings, day: date) -> None:
    """Feast's own `materialize` of the snapshot of `day` (the reference the bulk load must equal)."""
    stamp = feature_store.snapshot_timestamp(day)
    feature_store.open_store(settings).materialize(
        start_date=stamp - timedelta(seconds=1), end_date=stamp + timedelta(seconds=1)
    )


def stored(settings: Settings) -> dict:
    """Everything in the online store, as bytes: SQLite's Feast tables, or every Redis hash."""
    if settings.online_store == "sqlite":
        path = settings.feature_repo_dir / "online_store.db"
        with closing(sqlite3.connect(path)) as db:
            tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            return {
                table: db.execute(
                    f'SELECT entity_key, feature_name, value, value_text, event_ts, created_ts FROM "{table}" '
                    "ORDER BY entity_key, feature_name"
                ).fetchall()
                for table in tables
            }
    import redis

    address, db = settings.redis.split(",db=")
    host, port = address.split(":")
    client = redis.Redis(host=host, port=int(port), db=int(db))
    return {key: client.hgetall(key) for key in client.scan_iter(count=1000)}


def test_the_bulk_load_writes_the_bytes_of_feasts_materialize(snapshots_home, store, tmp_path):
    kind, redis = store
    ours = home_on(snapshots_home, tmp_path / "ours", kind, redis, db=0)
    feasts = home_on(snapshots_home, tmp_path / "feasts", kind, redis, db=1)
    assert feature_store.materialize(ours) == (CUTOFFS[-1], len(customers(ours, CUTOFFS[-1])))
    plain_feast_materialize(feasts, CUTOFFS[-1])
    written, reference = stored(ours), stored(feasts)
    assert written == reference and sum(map(len, reference.values())) > 100


@pytest.mark.parametrize("writers", [1, 2, 6])
def test_a_sqlite_load_shared_out_between_processes_writes_the_bytes_of_feasts_materialize(
    snapshots_home, tmp_path, writers
):
    ours = home_on(snapshots_home, tmp_path / "ours", "sqlite", None)
    feasts = home_on(snapshots_home, tmp_path / "feasts", "sqlite", None)
    feature_store.materialize(ours, writers=writers)
    plain_feast_materialize(feasts, CUTOFFS[-1])
    assert stored(ours) == stored(feasts)
    assert not [p.name for p in ours.feature_repo_dir.iterdir() if p.name.startswith(".online_store.db")]


def test_a_shared_out_sqlite_load_reports_every_customer_only_once_every_view_is_in(snapshots_home, tmp_path):
    settings = home_on(snapshots_home, tmp_path / "home", "sqlite", None)
    reports: list[tuple[int, int]] = []
    _, count = feature_store.materialize(
        settings, writers=3, on_chunk=lambda done, total: reports.append((done, total))
    )
    assert reports[-1] == (count, count)
    assert all(done < count for done, _ in reports[:-1]) and len(reports) > 2
    assert [done for done, _ in reports] == sorted(done for done, _ in reports)


def test_a_sqlite_load_forked_beside_another_thread_writes_the_same_bytes(snapshots_home, tmp_path):
    """The command line's progress bar runs a thread of its own while the writers are forked."""
    ours = home_on(snapshots_home, tmp_path / "ours", "sqlite", None)
    feasts = home_on(snapshots_home, tmp_path / "feasts", "sqlite", None)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        feature_store.materialize(ours, writers=2)
    finally:
        stop.set()
        other.join()
    plain_feast_materialize(feasts, CUTOFFS[-1])
    assert stored(ours) == stored(feasts)


def test_a_sqlite_load_of_a_snapshot_lacking_a_feature_names_it_and_leaves_the_live_store_as_it_was(
    snapshots_home, tmp_path
):
    settings = home_on(snapshots_home, tmp_path / "home", "sqlite", None)
    feature_store.materialize(settings, CUTOFFS[0])
    before = stored(settings)
    path = settings.snapshots_dir / f"{CUTOFFS[-1]}.parquet"
    pd.read_parquet(path).drop(columns=["spend_30d"]).to_parquet(path, index=False)
    with pytest.raises(InputError, match="the snapshot lacks spend_30d"):
        feature_store.materialize(settings, CUTOFFS[-1], writers=3)
    assert stored(settings) == before
    assert sorted(p.name for p in settings.feature_repo_dir.iterdir() if "online_store" in p.name) == [
        "online_store.db"
    ]


def test_the_bulk_load_reads_back_like_feasts_materialize(snapshots_home, store, tmp_path):
    """Every feature of the customers with odd values and a sample of others, via `get_online_features`."""
    kind, redis = store
    ours = home_on(snapshots_home, tmp_path / "ours", kind, redis, db=0)
    feasts = home_on(snapshots_home, tmp_path / "feasts", kind, redis, db=1)
    feature_store.materialize(ours)
    plain_feast_materialize(feasts, CUTOFFS[-1])
    ids = [*customers(ours, CUTOFFS[-1])[:60], "no-such-customer"]
    read = feature_store.online_features(feature_store.open_store(ours), ids, "churn")
    reference = feature_store.online_features(feature_store.open_store(feasts), ids, "churn")
    pd.testing.assert_frame_equal(read, reference)
    odd = read.set_index("customer_id").loc[ids[: len(ODD_FLOATS)], "spend_30d"].tolist()
    assert [str(x) for x in odd] == [str(x) for x in ODD_FLOATS]
    reader = OnlineFeatureReader(feature_store.open_store(ours), [f.name for f in FEATURES]).read_frame(ids)
    pd.testing.assert_frame_equal(reader, reference[reader.columns], check_dtype=False)


def customers(settings: Settings, day: date) -> list[str]:
    """The snapshot's customer ids in file order (its first rows carry the odd values)."""
    return pd.read_parquet(settings.snapshots_dir / f"{day}.parquet", columns=["customer_id"])[
        "customer_id"
    ].tolist()


@pytest.mark.parametrize("order", [CUTOFFS, CUTOFFS[::-1]], ids=["newer-second", "older-second"])
def test_the_last_load_is_live_whatever_its_date(snapshots_home, store, tmp_path, order):
    """A load makes its snapshot live: every value and date replaced, also by an older snapshot (on
    Redis, Feast's own write skips rows older than the stored ones, so reloading an older date after a
    bad one silently kept the bad one)."""
    kind, redis = store
    settings = home_on(snapshots_home, tmp_path / "home", kind, redis)
    for day in order:
        feature_store.materialize(settings, day)
    last = order[-1]
    ids = customers(settings, last)[-40:]
    expected = pd.read_parquet(settings.snapshots_dir / f"{last}.parquet").set_index("customer_id").loc[ids]
    rows = OnlineFeatureReader(feature_store.open_store(settings), [f.name for f in FEATURES]).read(ids)
    assert rows.found.all() and set(rows.as_of) == {last}
    for name in ("orders_365d", "days_since_last_order", "spend_90d"):
        assert rows.columns[name] == pytest.approx(expected[name].tolist(), nan_ok=True)
    online = feature_store.online_features(feature_store.open_store(settings), ids, "churn").set_index(
        "customer_id"
    )
    assert online["orders_365d"].tolist() == expected["orders_365d"].tolist()


def test_an_unknown_customer_is_not_found(snapshots_home, store, tmp_path):
    kind, redis = store
    settings = home_on(snapshots_home, tmp_path / "home", kind, redis)
    feature_store.materialize(settings)
    known = customers(settings, CUTOFFS[-1])[-1]
    reader = OnlineFeatureReader(feature_store.open_store(settings), [f.name for f in FEATURES])
    for _ in range(3):  # the same answer however many reads the reader has made
        rows = reader.read([known, "no-such-customer", known])
        assert rows.found.tolist() == [True, False, True]
        assert rows.as_of == [CUTOFFS[-1], None, CUTOFFS[-1]]
        assert all(values[1] is None for values in rows.columns.values())


def sqlite_schema(settings: Settings) -> list[tuple[str, str, str | None]]:
    path = settings.feature_repo_dir / "online_store.db"
    with closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()


def test_the_clustered_layout_reads_and_takes_feasts_writes_like_feasts_own(snapshots_home, tmp_path):
    """A bulk-loaded SQLite store is clustered on the primary key with empty `_ek` indexes; after
    `apply` again (Feast's `update` on the live file), Feast's own write path (`write_to_online_store`:
    changed values, a newer date, a new customer) leaves the same rows as in a store Feast materialized
    itself, and `get_online_features` answers the same."""
    ours = home_on(snapshots_home, tmp_path / "ours", "sqlite", None)
    feasts = home_on(snapshots_home, tmp_path / "feasts", "sqlite", None)
    feature_store.materialize(ours)
    plain_feast_materialize(feasts, CUTOFFS[-1])
    feature_store.apply(ours)

    schema = sqlite_schema(ours)
    answers = f"{PROJECT}_{ANSWER_VIEW}"
    tables = [sql for kind, name, sql in schema if kind == "table" and name != answers]
    assert len(tables) == len(VIEWS) and all(sql.endswith(") WITHOUT ROWID") for sql in tables)
    ek = [
        sql for kind, name, sql in schema if kind == "index" and name.endswith("_ek") and answers not in name
    ]
    assert len(ek) == len(tables) and all(sql.endswith("(entity_key) WHERE 0") for sql in ek)
    ids = customers(ours, CUTOFFS[-1])
    with closing(sqlite3.connect(ours.feature_repo_dir / "online_store.db")) as db:
        table = f"{PROJECT}_{view_name('rfm')}"
        plan = db.execute(
            f'EXPLAIN QUERY PLAN SELECT entity_key, feature_name, value, event_ts FROM "{table}" '
            "WHERE entity_key IN (?, ?) ORDER BY entity_key",
            [b"a", b"b"],
        ).fetchall()
        assert [row[-1] for row in plan] == [f"SEARCH {table} USING PRIMARY KEY (entity_key=?)"]

    snapshot = pd.read_parquet(ours.snapshots_dir / f"{CUTOFFS[-1]}.parquet")
    rfm = [JOIN_KEY, "event_timestamp", *(f.name for f in view_features("rfm"))]
    pushed = snapshot.loc[snapshot[JOIN_KEY].isin(ids[5:8]), rfm].copy()
    pushed["event_timestamp"] += pd.Timedelta(days=7)
    pushed["orders_365d"] += 100
    new = pushed.iloc[:1].assign(**{JOIN_KEY: "a-new-customer"})
    for settings in (ours, feasts):
        feature_store.open_store(settings).write_to_online_store(view_name("rfm"), pd.concat([pushed, new]))

    assert stored(ours) == stored(feasts)
    asked = [*ids[:10], "a-new-customer", "no-such-customer"]
    read = feature_store.online_features(feature_store.open_store(ours), asked, "churn")
    reference = feature_store.online_features(feature_store.open_store(feasts), asked, "churn")
    pd.testing.assert_frame_equal(read, reference)
    assert read.set_index(JOIN_KEY).loc[ids[5:8], "orders_365d"].tolist() == pushed["orders_365d"].tolist()


def test_the_answers_table_keeps_feasts_rowid_layout(snapshots_home, tmp_path):
    """Stored answers are 3 KB rows, read by `predict` one key at a time: SQLite serves such rows
    faster from a rowid table, so the bulk load clusters only the feature views' tables."""
    ours = home_on(snapshots_home, tmp_path / "ours", "sqlite", None)
    feature_store.materialize(ours)
    answers = f"{PROJECT}_{ANSWER_VIEW}"
    schema = {name: sql for _, name, sql in sqlite_schema(ours)}
    assert "WITHOUT ROWID" not in schema[answers]
    assert schema[f"{answers}_ek"].endswith("(entity_key)")
