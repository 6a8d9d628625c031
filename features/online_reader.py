"""Reading customers' latest features from Feast's online store, fast enough for a request path.

This module and its writing counterpart `features.online_writer` are the only ones that reach past
Feast's public API (`FeatureStore._get_provider`, the SQLite store's `_get_db_path`,
`compute_table_id`): a test (`tests/test_layering.py`) fails if any other module names them, and `tests/features/test_feature_store.py` checks on SQLite and on Redis
that it reads exactly what `get_online_features` returns. Feast's public paths were measured
against it (`benchmarks/bench_online_read.py`) and are slower; see the README.

Measured with `benchmarks/bench_online_read.py` (all 56 features, Complete Journey), Feast's public
`get_online_features` takes 5.5x this reader's time for 1 customer and 4.2x for 100 on SQLite (0.6
against 0.11 ms), 1.4x and 1.9x on Redis; a `precompute_online` feature service cannot be filled on
SQLite and fails a whole batch on one unknown id. Most of the cost is Python around the read
(registry lookups, response protos, type conversion per value). The reader therefore calls the online
store's own `online_read` — the interface every Feast online store implements — once per feature
view, and turns the value protos into floats and strings itself.

On the embedded SQLite store even `online_read` is mostly Python: one row per customer and feature,
each with a proto to parse and a timestamp to convert (66 ms for 100 customers). There the reader
reads Feast's tables with one SQL query over all views and takes the `value_text` column Feast writes
beside each proto (Feast's own layout: a table `{project}_{view}` with `entity_key, feature_name,
value, value_text, event_ts`). Both paths read the same rows `get_online_features` would.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from features.catalog import FEATURES_BY_NAME, VIEWS, view_features
from features.data.duck import sql_identifier
from features.feature_repo import JOIN_KEY, view_name

if TYPE_CHECKING:
    from feast import FeatureStore, FeatureView


@dataclass(frozen=True)
class OnlineRows:
    """Features of the requested customers, in request order.

    Attributes:
        columns: Each requested feature's values, one per requested id (None when missing).
        found: Whether the online store had any features for that customer.
        as_of: The date of the customer's features (None if not found): the snapshot date they were
            materialized from, or the cutoff an order event pushed; the oldest of the views that hold
            a value for the customer (a customer caught between two views of a switch is reported at
            the older date). A view with no value does not count: Feast's push leaves out a view whose
            features are all missing for the rows pushed (no household data), which keeps its date.
    """

    columns: dict[str, list]
    found: np.ndarray
    as_of: list[date | None]


class OnlineFeatureReader:
    """Reads a fixed list of catalog features for any customers: one SQL query on SQLite, else one
    `online_read` per feature view."""

    def __init__(self, store: FeatureStore, feature_names: Sequence[str]):
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        self._store = store
        self._entity_key, self._value = EntityKey, Value
        self.feature_names = list(feature_names)
        wanted = set(self.feature_names)
        self._views: list[tuple[FeatureView, list[str]]] = []
        for view in VIEWS:
            names = [f.name for f in view_features(view) if f.name in wanted]
            if names:
                self._views.append((store.get_feature_view(view_name(view)), names))
        self._provider = store._get_provider()  # the online store behind the provider; no public accessor
        self._sqlite = _SqliteRows(store, self._views) if store.config.online_store.type == "sqlite" else None

    def _keys(self, customer_ids: Sequence[str]) -> list:
        return [
            self._entity_key(join_keys=[JOIN_KEY], entity_values=[self._value(string_val=str(c))])
            for c in customer_ids
        ]

    def read(self, customer_ids: Sequence[str]) -> OnlineRows:
        if self._sqlite is not None:
            return self._sqlite.read(self._keys(customer_ids), self.feature_names)
        return self._read_views(customer_ids)

    def _read_views(self, customer_ids: Sequence[str]) -> OnlineRows:
        keys = self._keys(customer_ids)
        columns: dict[str, list] = {name: [None] * len(keys) for name in self.feature_names}
        found = np.zeros(len(keys), dtype=bool)
        stamps: list[datetime | None] = [None] * len(keys)
        for view, names in self._views:
            # A copy: Feast's Redis store appends "_ts:<view>" to the list it is given, so passing our
            # own list made it grow by one name per view and read (and every read slower).
            rows = self._provider.online_read(
                config=self._store.config, table=view, entity_keys=keys, requested_features=list(names)
            )
            for position, (stamp, values) in enumerate(rows):
                present = {
                    name: getattr(proto, kind)
                    for name, proto in (values or {}).items()
                    if name in columns and (kind := proto.WhichOneof("val")) not in (None, "null_val")
                }
                if not present:  # Redis answers an unknown key with empty values, not with nothing
                    continue
                found[position] = True
                if stamps[position] is None or (stamp is not None and stamp < stamps[position]):
                    stamps[position] = stamp
                for name, value in present.items():
                    columns[name][position] = value
        as_of = [None if s is None else s.date() for s in stamps]
        return OnlineRows(columns, found, as_of)

    def read_frame(self, customer_ids: Sequence[str]) -> pd.DataFrame:
        """`read` as a table (customer_id and the features; unknown customers all-missing)."""
        rows = self.read(customer_ids)
        frame = pd.DataFrame({JOIN_KEY: [str(c) for c in customer_ids]})
        for name in self.feature_names:
            values = pd.Series(rows.columns[name], dtype=object)
            numeric = FEATURES_BY_NAME[name].dtype != "string"
            frame[name] = pd.to_numeric(values, errors="coerce").astype(float) if numeric else values
        return frame


class _SqliteRows:
    """The rows of the requested customers from Feast's SQLite tables, in one query over all views:
    `value_text` (the value as text, which Feast writes beside each proto) and `event_ts` (epoch
    seconds, naive UTC, as Feast writes it). No proto parsing, no timestamp conversion per row."""

    def __init__(self, store: FeatureStore, views: list[tuple[FeatureView, list[str]]]):
        from feast.infra.key_encoding_utils import serialize_entity_key
        from feast.infra.online_stores.helpers import compute_table_id

        config = store.config
        self._path = store._get_provider().online_store._get_db_path(config)
        self._serialize = lambda key: serialize_entity_key(
            key, entity_key_serialization_version=config.entity_key_serialization_version
        )
        versioning = config.registry.enable_online_feature_view_versioning
        tables = [sql_identifier(compute_table_id(config.project, view, versioning)) for view, _ in views]
        self._tables = len(tables)
        self._sql = " UNION ALL ".join(
            f"SELECT entity_key, feature_name, value_text, event_ts FROM {table} WHERE entity_key IN ({{keys}})"
            for table in tables
        )
        self._file = ReadOnlyFile(self._path)

    def read(self, keys: list, wanted: list[str]) -> OnlineRows:
        serialized = [self._serialize(key) for key in keys]
        slot = {key: i for i, key in enumerate(dict.fromkeys(serialized))}
        sql = self._sql.format(keys=",".join("?" * len(slot)))
        texts: dict[str, list] = {name: [None] * len(slot) for name in wanted}
        stamps: list[int | None] = [None] * len(slot)
        for key, name, text, stamp in self._file.connection().execute(sql, list(slot) * self._tables):
            at = slot[key]
            if text is not None and (stamps[at] is None or stamp < stamps[at]):
                stamps[at] = stamp
            column = texts.get(name)
            if column is not None:
                column[at] = text
        order = [slot[key] for key in serialized]
        found = np.array([stamps[at] is not None for at in order], dtype=bool)
        as_of = [
            None if stamps[at] is None else datetime.fromtimestamp(stamps[at], UTC).date() for at in order
        ]
        columns: dict[str, list] = {}
        for name, column in texts.items():
            if FEATURES_BY_NAME[name].dtype == "string":
                columns[name] = [column[at] for at in order]
            else:
                columns[name] = [None if column[at] is None else float(column[at]) for at in order]
        return OnlineRows(columns, found, as_of)


class ReadOnlyFile:
    """Read-only connections to a SQLite file that may be replaced by a rename, one per thread."""

    def __init__(self, path: str | Path):
        self.path = path
        self._local = threading.local()  # one connection per serving thread

    def connection(self) -> sqlite3.Connection:
        """This thread's connection to the current database file. `materialize` switches dates by
        renaming a new file over the old one; a connection keeps reading the file it opened, so one
        whose file was replaced is reopened, and each query reads one date whole."""
        current = os.stat(self.path).st_ino
        opened = getattr(self._local, "opened", None)
        if opened is None or opened[0] != current:
            if opened is not None:
                opened[1].close()
            opened = (current, sqlite3.connect(f"file:{self.path}?mode=ro", uri=True))
            self._local.opened = opened
        return opened[1]
