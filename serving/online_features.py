"""Reading customers' latest features from Feast's online store, fast enough for a request path.

`FeatureStore.get_online_features` costs 6-11 ms for one customer here, most of it Python around
the read (registry lookups, response protos, type conversion per value). The service therefore calls
the online store's own `online_read` — the interface every Feast online store implements, SQLite and
Redis alike — once per feature view, and turns the value protos into floats and strings itself. It
reads the same rows `get_online_features` would (`tests/serving` checks the two agree).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from features.catalog import FEATURES_BY_NAME, VIEWS, view_features
from features.feature_repo import JOIN_KEY, view_name

if TYPE_CHECKING:
    from feast import FeatureStore, FeatureView


@dataclass(frozen=True)
class OnlineRows:
    """Features of the requested customers, in request order.

    Attributes:
        columns: Each requested feature's values, one per requested id (None when missing).
        found: Whether the online store had any features for that customer.
        as_of: The snapshot date the customer's features were materialized from (None if not found).
    """

    columns: dict[str, list]
    found: np.ndarray
    as_of: list[date | None]


class OnlineFeatureReader:
    """Reads a fixed list of catalog features for any customers, one `online_read` per feature view."""

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

    def read(self, customer_ids: Sequence[str]) -> OnlineRows:
        keys = [
            self._entity_key(join_keys=[JOIN_KEY], entity_values=[self._value(string_val=str(c))])
            for c in customer_ids
        ]
        columns: dict[str, list] = {name: [None] * len(keys) for name in self.feature_names}
        found = np.zeros(len(keys), dtype=bool)
        stamps: list[datetime | None] = [None] * len(keys)
        for view, names in self._views:
            rows = self._provider.online_read(
                config=self._store.config, table=view, entity_keys=keys, requested_features=names
            )
            for position, (stamp, values) in enumerate(rows):
                if not values:
                    continue
                found[position] = True
                if stamps[position] is None or (stamp is not None and stamp > stamps[position]):
                    stamps[position] = stamp
                for name in names:
                    proto = values.get(name)
                    if proto is not None:
                        kind = proto.WhichOneof("val")
                        columns[name][position] = None if kind in (None, "null_val") else getattr(proto, kind)
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
