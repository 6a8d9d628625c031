"""Working with the Feast store: register, load the online store in chunks, read for training and serving.

Training sets come from `get_historical_features` (point-in-time join against the snapshots) and
requests from `get_online_features`; both name a model's `FeatureService`, so the two paths cannot
drift apart. `training_frames` gives the same rows one cutoff at a time, read straight from the
snapshot files, for training sets too large for Feast's join in memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.catalog import FEATURES
from features.errors import InputError
from features.feature_repo import JOIN_KEY, definitions, store_config, write_store_config
from features.files import write_atomically
from features.model_table import MODEL_NAMES
from features.settings import Settings

if TYPE_CHECKING:
    from feast import FeatureService, FeatureStore

#: Rows written to the online store per call: bounds memory whatever the number of customers.
MATERIALIZE_CHUNK_ROWS = 50_000


#: Entity-row column that carries each row's position through Feast's point-in-time join.
ROW_ORDER = "tierwise_row"


def open_store(settings: Settings) -> FeatureStore:
    """The Feast store of a data home, configured from `settings` in memory.

    Nothing is written: a service reloading its models, or a home on a read-only volume, opens the
    store without touching the home, and the paths always follow where the home is now."""
    return _open(settings, store_config(settings))


def _open(settings: Settings, config: dict) -> FeatureStore:
    from feast import FeatureStore, RepoConfig

    repo = settings.feature_repo_dir
    return FeatureStore(repo_path=str(repo), config=RepoConfig(repo_path=repo, **config))


def apply(settings: Settings) -> FeatureStore:
    """Register the entity, views and feature services; idempotent. Also writes `feature_store.yaml`,
    so Feast's own CLI (`feast -c <home>/feature_repo ...`) works on the home."""
    from features.online_answers import ensure_answer_files

    write_store_config(settings)
    store = open_store(settings)
    store.apply(definitions(settings.snapshots_dir, settings.answers_dir, settings.engine))
    ensure_answer_files(settings.answers_dir)
    return store


def feature_service(store: FeatureStore, name: str) -> FeatureService:
    """A model's feature service, or an error naming the ones that exist."""
    from feast.errors import FeatureServiceNotFoundException

    try:
        return store.get_feature_service(name)
    except FeatureServiceNotFoundException as exc:
        known = (
            ", ".join(s.name for s in store.list_feature_services()) or "none (run `tierwise features apply`)"
        )
        raise InputError(f"unknown feature service {name!r}; known: {known}") from exc


def service_feature_names(store: FeatureStore, name: str) -> list[str]:
    """Feature names of a service, in catalog order (the column order models are trained on)."""
    service = feature_service(store, name)
    wanted = {f.name for projection in service.feature_view_projections for f in projection.features}
    return [f.name for f in FEATURES if f.name in wanted]


def materialize(
    settings: Settings,
    as_of: date | None = None,
    chunk_rows: int = MATERIALIZE_CHUNK_ROWS,
    on_chunk: Callable[[int, int], None] | None = None,
    writers: int | None = None,
) -> tuple[date, int]:
    """Load one snapshot (default: the latest) into the online store, `chunk_rows` customers at a time
    (on SQLite by `writers` processes, default one per core: `features.online_writer.fill_sqlite`).

    Feast's own `materialize` holds the whole range in memory (13 GB for a million customers) and
    spends about 1.6 ms per customer in Python per value; `features.online_writer` writes the same
    rows with the same bytes, streaming the snapshot in chunks, many times faster
    (`benchmarks/bench_online_load.py`).

    A reader never sees half a switch. On SQLite (the embedded default) the snapshot is written into a
    new database file beside the live one, which then replaces it in one rename: a query reads the old
    date or the new one, never some views of each. On Redis each customer's views are written by one
    command, so mid-load a reader sees every customer whole, some at the old date and some at the new
    one; customers missing from the new snapshot keep their old values.

    Returns:
        The snapshot date and the number of customers written.
    """
    from features import online_writer

    snapshots = settings.feature_snapshots
    chosen = snapshots.choose(as_of)
    parquet = pq.ParquetFile(snapshots.path(chosen))
    store = open_store(settings)
    if store.config.online_store.type != "sqlite":
        return chosen, online_writer.load_redis(store, parquet, chunk_rows, on_chunk)
    live = Path(store.config.online_store.path)
    if not live.exists():
        raise InputError(f"{live}: no online store yet; run `tierwise features apply` first")
    written = 0

    def fill(partial: Path) -> None:
        nonlocal written
        written = online_writer.fill_sqlite(
            store,
            live,
            partial,
            snapshots.path(chosen),
            chunk_rows,
            on_chunk,
            writers or online_writer.WRITERS,
        )

    write_atomically(live, fill)
    return chosen, written


def training_frame(settings: Settings, entity_rows: pd.DataFrame, service: str) -> pd.DataFrame:
    """Point-in-time features for `(customer_id, event_timestamp)` rows, in the order given.

    Args:
        entity_rows: Columns `customer_id` (str) and `event_timestamp` (UTC dates of existing snapshots);
            any other columns (labels) are returned as they are, beside the features.
        service: A model name (`features.model_table.MODEL_NAMES`).

    Raises:
        InputError: an unknown service, or a requested date without a snapshot (Feast would silently
            fall back to an older one).
    """
    _known_service(service)
    rows = entity_rows.assign(
        event_timestamp=_utc_timestamps(entity_rows["event_timestamp"]),
        **{ROW_ORDER: np.arange(len(entity_rows))},
    )
    _refuse_missing_snapshots(settings, set(rows["event_timestamp"].dt.date))
    store = open_store(settings)
    if settings.engine == "spark":
        from features.spark_session import spark_session

        spark_session(settings)  # Feast's Spark store joins in the active session: ours, set up for the SQL
    joined = store.get_historical_features(entity_df=rows, features=feature_service(store, service)).to_df()
    del rows
    # Feast returns the entity rows in its own order; putting them back by position costs one copy,
    # where merging on the keys cost two (at a million customers, gigabytes each).
    joined = joined.sort_values(ROW_ORDER, kind="stable", ignore_index=True)
    if len(joined) != len(entity_rows):
        raise RuntimeError(f"Feast returned {len(joined)} rows for {len(entity_rows)} entity rows")
    joined["event_timestamp"] = pd.to_datetime(joined["event_timestamp"], utc=True).astype(
        "datetime64[us, UTC]"
    )
    names = service_feature_names(store, service)
    passed = [c for c in entity_rows.columns if c not in (JOIN_KEY, "event_timestamp", *names)]
    return joined[[JOIN_KEY, "event_timestamp", *passed, *names]]


def training_frames(
    settings: Settings, entity_rows: pd.DataFrame, service: str, days: Collection[date] | None = None
) -> Iterator[pd.DataFrame]:
    """`training_frame`, one snapshot date at a time (oldest first), read from the snapshot files.

    Each frame holds the rows of one date in the order given, with the columns and values
    `training_frame` returns for them (`tests/features/test_feature_store.py` compares the two).
    Feast's point-in-time join takes, per entity row, the newest feature row at or before its
    timestamp; entity rows are dated exactly on a snapshot (other dates are refused), so that row is
    the customer's row in the snapshot of that date, and the join is a lookup by customer id in
    one file. Only the service's columns are read, one snapshot at a time, so memory holds one
    snapshot and the frames the caller keeps: Feast's join of a million customers over nine cutoffs
    held 20 GB. A customer missing from its date's snapshot gets empty features (Feast would look
    back up to the views' TTL; a snapshot holds every customer with an order before its date, which
    is every customer labels ask for). The retrieval is logged to the active MLflow run by Feast's
    MLflow integration, as `get_historical_features` logs it.

    Args:
        entity_rows: As for `training_frame`.
        service: A model name (`features.model_table.MODEL_NAMES`).
        days: Only the rows of these dates (default: every row).

    Raises:
        InputError: an unknown service, or a requested date without a snapshot.
    """
    _known_service(service)
    timestamps = _utc_timestamps(entity_rows["event_timestamp"])
    dates = timestamps.dt.date.to_numpy()
    chosen = set(dates) if days is None else set(dates) & set(days)
    _refuse_missing_snapshots(settings, chosen)
    store = open_store(settings)
    names = service_feature_names(store, service)
    passed = [c for c in entity_rows.columns if c not in (JOIN_KEY, "event_timestamp", *names)]
    started = time.monotonic()
    for day in sorted(chosen):
        mask = dates == day
        rows = entity_rows.loc[mask, [JOIN_KEY, *passed]].reset_index(drop=True)
        rows.insert(1, "event_timestamp", timestamps[mask].reset_index(drop=True))
        path = settings.feature_snapshots.path(day)
        lacking = [name for name in names if name not in pq.read_schema(path).names]
        if lacking:
            raise InputError(
                f"{path}: no column {', '.join(lacking[:3])}{' …' if len(lacking) > 3 else ''} (a snapshot "
                f"from an older version); rebuild it: `tierwise features build --cutoffs {day}:{day}:1d`"
            )
        snapshot = pq.read_table(path, columns=[JOIN_KEY, *names])
        positions = pc.index_in(pa.array(rows[JOIN_KEY], type=pa.string()), value_set=snapshot[JOIN_KEY])
        features = snapshot.select(names).take(positions)
        del snapshot
        # Column by column, each Arrow column freed once converted: no second copy of the snapshot.
        yield pd.concat([rows, features.to_pandas(split_blocks=True, self_destruct=True)], axis=1, copy=False)
    _log_retrieval(store, service, len(entity_rows), time.monotonic() - started)


def _log_retrieval(store: FeatureStore, service: str, entities: int, seconds: float) -> None:
    """What `get_historical_features` logs to the active MLflow run, through Feast's integration."""
    if store.mlflow is None or not store.config.mlflow.auto_log:
        return
    chosen = feature_service(store, service)
    refs = [f"{p.name_to_use()}:{f.name}" for p in chosen.feature_view_projections for f in p.features]
    store.mlflow.log_feature_retrieval(
        feature_refs=refs,
        entity_count=entities,
        duration_seconds=seconds,
        retrieval_type="historical",
        feature_service=chosen,
        feature_service_name=service,
    )


def _known_service(service: str) -> None:
    if service not in MODEL_NAMES:
        raise InputError(f"unknown feature service {service!r}; known: {', '.join(MODEL_NAMES)}")


def _utc_timestamps(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True).astype("datetime64[us, UTC]")


def _refuse_missing_snapshots(settings: Settings, days: set[date]) -> None:
    """Feast would silently join an older snapshot to a date without one: refuse instead."""
    missing = sorted(days - set(settings.feature_snapshots.dates()))
    if missing:
        raise InputError(
            f"no feature snapshot for {', '.join(map(str, missing[:5]))}{' …' if len(missing) > 5 else ''}: "
            "run `tierwise features build` for those dates"
        )


def online_features(store: FeatureStore, customer_ids: Sequence[str], service: str) -> pd.DataFrame:
    """Latest features of `customer_ids` from the online store; unknown customers come back all-null."""
    response = store.get_online_features(
        features=feature_service(store, service), entity_rows=[{JOIN_KEY: c} for c in customer_ids]
    )
    frame = response.to_df()
    names = service_feature_names(store, service)
    return frame[[JOIN_KEY, *names]]


def snapshot_timestamp(day: date) -> datetime:
    """The `event_timestamp` of a snapshot (UTC midnight of its date)."""
    return pd.Timestamp(day, tz="UTC").to_pydatetime()
