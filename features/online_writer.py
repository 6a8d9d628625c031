"""Loading a feature snapshot into Feast's online store in bulk: the bytes Feast writes, much faster.

Feast's own paths (`materialize`, `write_to_online_store`) spend their time in Python per value:
one `ValueProto` object built, serialized and (on SQLite) inserted by its own `execute` per customer
and feature — about 1.6 ms per customer with 56 features, on SQLite and on Redis alike. Most of
that work repeats: a column of a snapshot holds far fewer distinct values than rows (counts, shares,
household attributes). Here each batch of the snapshot is encoded column by column, once per
distinct value, and written with few, large writes.

The rows written are exactly the rows Feast's `online_write_batch` writes for the same snapshot, so
`get_online_features` and `features.online_reader` read them back unchanged:

- keys: `serialize_entity_key` of the customer id (the store's serialization version); on Redis
  followed by the project name, as Feast's `_redis_key`;
- values: the serialized `ValueProto` Feast's `python_values_to_proto_values` makes from the Arrow
  column (NaN and None become an empty proto), and on SQLite the `value_text` beside it (Feast's
  `extract_text_and_num`);
- timestamps: on SQLite `event_ts` as Feast's SQLite adapter stores a naive UTC datetime (epoch
  seconds) and `created_ts` NULL (the views have no created column); on Redis `_ts:{view}` holding a
  serialized protobuf `Timestamp`, and field names `mmh3("{view}:{feature}")`.

Every batch checks a sample of its distinct values against Feast's converter, so a Feast release
that encodes differently fails the load instead of writing values Feast would read another way.

SQLite: rows go into a fresh database file (see `features.feature_store.materialize`, which renames it
over the live one), one `executemany` per view and batch, in key order, journal off; the views are
shared out between processes, one per core, and the other processes' tables copied in. The file's
tables are Feast's with the same columns and primary key, but clustered on that key (`WITHOUT
ROWID`) and without Feast's redundant entity-key index (`features.sqlite_layout`): one B-tree entry
per row instead of three; Feast reads, upserts and re-applies it unchanged.

Redis: one `HSET` per customer carrying every view, so a reader sees each customer wholly at the old
date or wholly at the new one; commands are packed as Redis protocol here and sent a few thousand at
a time.

With `features.online_reader`, this is one of the two modules that reach past Feast's public API
(`tests/test_layering.py`).
"""

from __future__ import annotations

import itertools
import os
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.catalog import VIEWS
from features.errors import InputError
from features.feature_repo import ANSWER_FIELDS, ANSWER_VIEW, JOIN_KEY, view_name
from features.forked import worker_pool
from features.sqlite_layout import clustered_schema, quoted

if TYPE_CHECKING:
    from feast import FeatureStore

Progress = Callable[[int, int], None]
T = TypeVar("T")
#: Processes writing a SQLite load, each a share of the views: one per core.
WRITERS = os.cpu_count() or 1
#: Customers per burst of Redis commands: large enough to hide round trips, small enough for buffers.
REDIS_BURST = 2_000
#: Distinct values per column and batch checked against Feast's own converter.
CHECKED_VALUES = 32
#: Rows per SQLite INSERT statement (about; whole customers).
ROWS_PER_STATEMENT = 120


@dataclass(frozen=True)
class _Column:
    """One feature of one batch: each distinct value encoded once, and per row which one it is.

    Attributes:
        protos: Serialized `ValueProto` per distinct value (empty bytes for a missing value).
        texts: Feast's `value_text` per distinct value (None for a missing value); SQLite only.
        index: For each row of the batch, its position in `protos` and `texts`.
    """

    protos: list[bytes]
    texts: list[str | None] | None
    index: list[int]

    def cells(self, values: list) -> Iterator:
        return map(values.__getitem__, self.index)


@dataclass(frozen=True)
class _View:
    """A feature view as the online store names it: `name` keys Redis fields, `table` is SQLite's."""

    name: str
    table: str
    features: tuple[tuple[str, object], ...]  # (feature name, Feast ValueType), by name


class _Layout:
    """What Feast's online store layout needs from the registry and the store config."""

    def __init__(self, store: FeatureStore):
        from feast.infra.online_stores.helpers import compute_table_id, compute_versioned_name

        config = store.config
        self.version = config.entity_key_serialization_version
        versioning = config.registry.enable_online_feature_view_versioning
        self.views: list[_View] = []
        for view in VIEWS:
            fv = store.get_feature_view(view_name(view))
            if fv.batch_source.created_timestamp_column:
                raise InputError(f"{fv.name}: a created-timestamp column is not supported by the bulk load")
            self.timestamp_field = fv.batch_source.timestamp_field
            features = tuple(sorted((f.name, f.dtype.to_value_type()) for f in fv.features))
            self.views.append(
                _View(
                    compute_versioned_name(fv, versioning),
                    compute_table_id(config.project, fv, versioning),
                    features,
                )
            )
        self.columns = [JOIN_KEY, self.timestamp_field, *(n for v in self.views for n, _ in v.features)]

    def batches(
        self, parquet: pq.ParquetFile, rows: int, whole_order: bool, views: list[_View] | None = None
    ) -> Iterator[tuple[list[bytes], pa.RecordBatch]]:
        """The snapshot `rows` customers at a time (the columns of `views`, default all), each batch
        sorted by serialized entity key, with the keys.

        With `whole_order` the batches follow the key order over the whole snapshot, which is read
        into memory once (about 0.5 KB per customer): every SQLite row then lands after the rows
        already written, so the B-trees grow at their right edge. Batches of the file's own order
        each spanned the whole key range (a snapshot is sorted by id as text, keys by length first),
        and every batch after the first split pages all over the tables written so far. Without it
        the snapshot is streamed a batch at a time (Redis, where order does not matter)."""
        missing = sorted(set(self.columns) - set(parquet.schema_arrow.names))
        if missing:
            raise InputError(
                f"the snapshot lacks {', '.join(missing)}: rebuild it with `tierwise features build`"
            )
        columns = self.columns[:2] + [n for v in views for n, _ in v.features] if views else self.columns
        if not whole_order:
            for batch in parquet.iter_batches(batch_size=rows, columns=columns):
                keys = self.keys(batch.column(JOIN_KEY).to_pylist())
                order = sorted(range(len(keys)), key=keys.__getitem__)
                yield [keys[i] for i in order], batch.take(pa.array(order, pa.int64()))
            return
        table = parquet.read(columns=columns).combine_chunks()
        if not table.num_rows:
            return
        whole = table.to_batches()[0]
        del table
        keys = self.keys(whole.column(JOIN_KEY).to_pylist())
        order = sorted(range(len(keys)), key=keys.__getitem__)
        for start in range(0, len(order), rows):
            chunk = order[start : start + rows]
            yield [keys[i] for i in chunk], whole.take(pa.array(chunk, pa.int64()))

    def keys(self, ids: list[str]) -> list[bytes]:
        """Feast's `serialize_entity_key` of each customer id, laid out directly: the bytes Feast
        writes before the id (they depend only on the join key) then the id's length and UTF-8
        bytes. Calling Feast per id took 20 µs per customer (loaded machine). The first, the last
        and the longest id are checked against Feast's own function, so a Feast release that lays
        keys out otherwise fails the load."""
        from feast.infra.key_encoding_utils import serialize_entity_key
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        def feasts(customer: str) -> bytes:
            key = EntityKey(join_keys=[JOIN_KEY], entity_values=[Value(string_val=customer)])
            return serialize_entity_key(key, entity_key_serialization_version=self.version)

        prefix = feasts("")[:-4]
        encoded = [c.encode() for c in ids]
        keys = [prefix + len(e).to_bytes(4, "little") + e for e in encoded]
        if ids:
            for i in {0, len(ids) - 1, max(range(len(ids)), key=lambda j: len(encoded[j]))}:
                if keys[i] != feasts(ids[i]):
                    raise RuntimeError(
                        f"the entity key of {ids[i]!r} differs from Feast's; this Feast is not supported"
                    )
        return keys


def _stamps(column: pa.Array) -> tuple[list, list[int]]:
    """Distinct event timestamps as Feast turns them into datetimes (naive, UTC), and per row which one."""
    values = column.to_numpy(zero_copy_only=False)
    distinct, index = np.unique(values, return_inverse=True)
    return [t.to_pydatetime() for t in pd.to_datetime(distinct)], index.tolist()


def _encode(array: pa.Array, value_type: object, with_text: bool) -> _Column:
    """Encode one column as Feast's `python_values_to_proto_values` does, and when `with_text` the
    `value_text` of its SQLite store."""
    from feast.protos.feast.types.Value_pb2 import Value
    from feast.value_type import ValueType

    if value_type == ValueType.DOUBLE:
        values = array.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
        # Distinct bit patterns, not distinct numbers: -0.0 and 0.0 are encoded differently.
        bits, index = np.unique(values.view(np.int64), return_inverse=True)
        distinct = bits.view(np.float64)
        # A double in a ValueProto is one tag byte and the 8 bytes little-endian: built for all at once.
        tag = Value(double_val=1.0).SerializeToString()[:-8]
        raw = np.empty((len(bits), len(tag) + 8), np.uint8)
        raw[:, : len(tag)] = np.frombuffer(tag, np.uint8)
        raw[:, len(tag) :] = distinct.astype("<f8").view(np.uint8).reshape(-1, 8)
        protos = raw.view(f"V{raw.shape[1]}").ravel().tolist()
        distinct = distinct.tolist()
        for i in np.flatnonzero(np.isnan(bits.view(np.float64))).tolist():
            protos[i] = b""  # Feast stores NaN as a missing value: an empty proto
        texts = [None if x != x else str(x) for x in distinct] if with_text else None
    elif value_type == ValueType.STRING:
        encoded = array.dictionary_encode()
        distinct = [*encoded.dictionary.to_pylist(), None]
        protos = [Value(string_val=s).SerializeToString() for s in distinct[:-1]] + [b""]
        texts = distinct if with_text else None
        index = encoded.indices.fill_null(len(distinct) - 1).to_numpy(zero_copy_only=False)
    else:
        raise InputError(f"the bulk load writes Float64 and String features, not {value_type}")
    column = _Column(protos, texts, np.asarray(index).ravel().tolist())
    _check_against_feast(distinct, column, value_type)
    return column


def _check_against_feast(distinct: list, column: _Column, value_type: object) -> None:
    """Compare a sample of encoded distinct values (the first, the last, a missing one) with Feast."""
    from feast.infra.online_stores.helpers import extract_text_and_num
    from feast.type_map import python_values_to_proto_values

    half = CHECKED_VALUES // 2
    sample = sorted({*range(min(half, len(distinct))), *range(max(0, len(distinct) - half), len(distinct))})
    sample += [i for i, p in enumerate(column.protos) if not p and i not in sample][:1]
    floats = all(isinstance(distinct[i], float) for i in sample)
    values = np.array([distinct[i] for i in sample], dtype=np.float64 if floats else object)
    for i, proto in zip(sample, python_values_to_proto_values(values, value_type), strict=True):
        text = extract_text_and_num(proto, False)[0]
        if column.protos[i] != proto.SerializeToString() or (column.texts and column.texts[i] != text):
            raise RuntimeError(
                f"bulk encoding of {distinct[i]!r} differs from Feast's; this Feast is not supported"
            )


def _encoded_views(views: list[_View], batch: pa.RecordBatch, with_text: bool) -> list[list[_Column]]:
    return [[_encode(batch.column(name), kind, with_text) for name, kind in view.features] for view in views]


def fill_sqlite(
    store: FeatureStore,
    schema: Path,
    target: Path,
    snapshot: Path,
    rows: int,
    progress: Progress | None,
    writers: int = 1,
) -> int:
    """Write the snapshot into the new SQLite file `target`, with the tables and indexes of `schema`
    (the live online store, made by `apply`) in the clustered layout of `features.sqlite_layout`.
    The file is only valid once this returns: the caller renames it into place, so the journal is
    off and nothing is synced here.

    With `writers` above one, this process writes the smallest views, about its share of the
    features, and `writers - 1` forked processes write the others, a view at a time, largest first,
    each into a file of its own. Each finished view's table is then copied in while the rest are
    still being written (SQLite copies a table into an empty one of the same declaration record by
    record, without decoding them). Binding values holds the interpreter's lock, so threads could
    not share the work (measured: slower); processes can. `progress` counts customers of all the
    views: this process's share as it goes, each other view once it is copied in.

    Returns:
        The number of customers written.
    """
    online = store.config.online_store
    if getattr(online, "vector_enabled", False) or getattr(online, "enable_openai_compatible_store", False):
        raise InputError(
            "the bulk load writes Feast's plain SQLite layout, without vector or numeric columns"
        )
    layout = _Layout(store)
    with closing(sqlite3.connect(schema)) as live:
        objects = live.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
    tables, indexes = clustered_schema(objects, {view.table for view in layout.views})
    own, others = shared_out(layout.views, writers)
    sides = [target.with_name(f"{target.name}.{i}") for i in range(len(others))]
    pool = _writers(min(writers - 1, len(others)))
    try:
        pending = [
            pool.submit(_fill_views, layout, [view], snapshot, rows, side, tables)
            for view, side in zip(others, sides, strict=True)
        ]
        shares = _Shares(progress, layout.views, own)
        written = _fill_views(layout, own, snapshot, rows, target, tables, shares.own)
        for view, side, future in zip(others, sides, pending, strict=True):
            if future.result() != written:
                raise RuntimeError(f"{view.table}: written for other customers than the other views")
            _copy_table(target, side, view.table)
            side.unlink()
            shares.copied(view)
        with closing(sqlite3.connect(target, isolation_level=None)) as db:
            for statement in indexes:
                db.execute(statement)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)  # after a failure, views not started are not written
        for side in sides:
            side.unlink(missing_ok=True)
    return written


class _Shares:
    """Progress over every view of a load shared out between processes, in customers: this
    process's views count as they are written, the others' once each is copied in, so the total is
    reached only when the whole store is."""

    def __init__(self, progress: Progress | None, views: list[_View], own: list[_View]) -> None:
        self.progress = progress
        self.features = sum(len(v.features) for v in views)
        self.own_features = sum(len(v.features) for v in own)
        self.copied_features = 0
        self.customers = 0

    def own(self, done: int, total: int) -> None:
        self.customers = total
        self._report(done * self.own_features)

    def copied(self, view: _View) -> None:
        self.copied_features += len(view.features)
        self._report(self.customers * self.own_features)

    def _report(self, own_cells: int) -> None:
        if self.progress:
            cells = own_cells + self.customers * self.copied_features
            self.progress(cells // self.features, self.customers)


def shared_out(views: list[_View], writers: int) -> tuple[list[_View], list[_View]]:
    """The views this process writes (the smallest, up to a `writers`-th of the features), and the
    others, largest first, for the forked writers: their last, the smallest, is copied in last."""
    by_size = sorted(views, key=lambda v: len(v.features))
    share = sum(len(v.features) for v in views) / max(1, writers)
    sizes = itertools.accumulate(len(v.features) for v in by_size)
    own = [v for v, size in zip(by_size, sizes, strict=True) if size <= share] or by_size[:1]
    return own, [v for v in reversed(by_size) if v not in own]


def _copy_table(target: Path, side: Path, table: str) -> None:
    """Copy `table` of the file `side` into the same, empty table of `target`."""
    with closing(sqlite3.connect(target, isolation_level=None)) as db:
        _bulk_pragmas(db)
        db.execute("ATTACH DATABASE ? AS side", (str(side),))
        db.execute(f"INSERT INTO main.{quoted(table)} SELECT * FROM side.{quoted(table)}")


def _writers(processes: int) -> ProcessPoolExecutor | None:
    """A pool of `processes` writers, or None when none is needed. On Linux they are forked and
    inherit the imported Feast (3 s to import afresh); they use only the snapshot's file, Arrow,
    numpy and SQLite, whose state survives a fork (Arrow restarts its thread pools in a child)."""
    return worker_pool(processes)


def _bulk_pragmas(db: sqlite3.Connection) -> None:
    for pragma in ("journal_mode=OFF", "synchronous=OFF", "locking_mode=EXCLUSIVE", "cache_size=-262144"):
        db.execute(f"PRAGMA {pragma}")


def _fill_views(
    layout: _Layout,
    views: list[_View],
    snapshot: Path,
    rows: int,
    target: Path,
    tables: list[str],
    progress: Progress | None = None,
) -> int:
    """Create the tables of `tables` in the file `target` and write the rows of `views` into
    theirs, in key order. Returns the number of customers written."""
    from feast.infra.online_stores.sqlite import adapt_datetime_epoch
    from feast.utils import to_naive_utc

    parquet = pq.ParquetFile(snapshot)

    def encoded() -> Iterator[tuple[list[bytearray], list[int], list[list[_Column]]]]:
        for keys, batch in layout.batches(parquet, rows, whole_order=True, views=views):
            stamps, at = _stamps(batch.column(layout.timestamp_field))
            epochs = [adapt_datetime_epoch(to_naive_utc(t)) for t in stamps]
            yield _blobs(keys), list(map(epochs.__getitem__, at)), _encoded_views(views, batch, True)

    total, done = parquet.metadata.num_rows, 0
    with closing(sqlite3.connect(target, isolation_level=None)) as db:
        _bulk_pragmas(db)
        db.execute("BEGIN")
        for statement in tables:
            db.execute(statement)
        for keys, row_epochs, encoded_views in _ahead(encoded()):
            for view, columns in zip(views, encoded_views, strict=True):
                _insert(db, view, keys, row_epochs, columns)
            done += len(keys)
            if progress:
                progress(done, total)
        db.execute("COMMIT")
    return done


def _insert(
    db: sqlite3.Connection, view: _View, keys: list[bytearray], epochs: list[int], columns: list[_Column]
) -> None:
    """Insert one view's rows of a batch, many customers per statement (fewer statement resets), the
    rest one customer per statement.

    Each customer's key and `event_ts` are bound once for all its rows and the feature names are
    written into the statement (`customers_statement`): two values bound per row instead of five,
    which is most of the Python time per row. The parameters are flattened from iterators in C
    (zip, chain), not a Python loop per value; the keys and protos are bound as `_blobs`."""
    names = [name for name, _ in view.features]
    width = 2 + 2 * len(names)
    per = max(1, ROWS_PER_STATEMENT // len(names))
    values = [cells for c in columns for cells in (c.cells(_blobs(c.protos)), c.cells(c.texts))]
    flat = itertools.chain.from_iterable(zip(keys, epochs, *values, strict=True))
    whole = itertools.islice(flat, len(keys) // per * per * width)
    db.executemany(customers_statement(view.table, names, per), zip(*[whole] * (per * width), strict=True))
    db.executemany(customers_statement(view.table, names, 1), zip(*[flat] * width, strict=True))


def _blobs(values: list[bytes]) -> list[bytearray]:
    """The same bytes as `bytearray`, which Python's `sqlite3` binds as the same BLOB without its
    adapter lookup: it skips the lookup only for int, float, str and bytearray, and a `bytes`
    parameter cost a registry lookup and two attribute lookups on every bind (a third of the time
    per row on the clustered layout, micro-benchmark). Made once per key and per distinct value."""
    return list(map(bytearray, values))


def customers_statement(table: str, names: list[str], customers: int) -> str:
    """Feast's own statement for the rows of `customers` whole customers, one row per name of
    `names`. Parameters per customer: its key, its `event_ts`, then `value` and `value_text` of
    each feature in the order of `names` (numbered, so the key and date are bound once)."""
    width = 2 + 2 * len(names)
    literals = [_sql_text(name) for name in names]
    rows = [
        f"(?{at + 1}, {name}, ?{at + 3 + 2 * i}, ?{at + 4 + 2 * i}, ?{at + 2}, NULL)"
        for at in range(0, customers * width, width)
        for i, name in enumerate(literals)
    ]
    return _upsert(table, ", ".join(rows), newer_only=False)


def upsert_statement(table: str, rows: int, newer_only: bool = False) -> str:
    """Feast's own statement (`SqliteOnlineStore.online_write_batch`, no vector or numeric columns)
    for `rows` rows; with `newer_only`, a stored row dated later than the new one is kept."""
    return _upsert(table, ", ".join(["(?, ?, ?, ?, ?, NULL)"] * rows), newer_only)


def _upsert(table: str, values: str, newer_only: bool) -> str:
    quoted = '"' + table.replace('"', '""') + '"'
    return (
        f"INSERT INTO {quoted} (entity_key, feature_name, value, value_text, event_ts, created_ts) VALUES "
        + values
        + " ON CONFLICT(entity_key, feature_name) DO UPDATE SET "
        "value = excluded.value, value_text = excluded.value_text, event_ts = excluded.event_ts, "
        "created_ts = excluded.created_ts"
        + (f" WHERE excluded.event_ts >= {quoted}.event_ts" if newer_only else "")
    )


def _sql_text(text: str) -> str:
    """A SQL string literal: stored as the same TEXT value as `text` bound as a parameter."""
    return "'" + text.replace("'", "''") + "'"


def load_redis(store: FeatureStore, parquet: pq.ParquetFile, rows: int, progress: Progress | None) -> int:
    """Write the snapshot into the store's Redis, one `HSET` per customer with all views, after an
    `HDEL` of the customer's stored answer (computed from the features being replaced).

    Unlike Feast's write, a stored row with a newer timestamp is overwritten too: a load makes the
    snapshot live, like the SQLite swap (Feast's `skip_dedup` mode writes the same way).

    Returns:
        The number of customers written.
    """
    from feast.infra.online_stores.helpers import _mmh3
    from feast.utils import make_tzaware
    from google.protobuf.timestamp_pb2 import Timestamp

    online = store.config.online_store
    if online.type != "redis" or online.redis_type != "redis":
        raise InputError(f"the bulk load writes to one Redis server, not {online.type}/{online.redis_type}")
    layout = _Layout(store)
    project = store.config.project.encode()
    fields = [
        [redis_bulk(_mmh3(f"{view.name}:{name}")) for name, _ in view.features] for view in layout.views
    ]
    stamp_fields = [redis_bulk(f"_ts:{view.name}".encode()) for view in layout.views]
    expire = b"" if not online.key_ttl_seconds else redis_bulk(str(online.key_ttl_seconds).encode())
    client = store._get_provider().online_store._get_client(online)
    # The customer's stored answer goes with the features it was computed from (`features.online_answers`).
    answer_fields = redis_answer_fields(store)
    unanswer = b"*%d\r\n$4\r\nHDEL\r\n" % (2 + len(answer_fields)) if answer_fields else b""
    answer_fields_packed = b"".join(map(redis_bulk, answer_fields))

    def packed() -> Iterator[list[bytes]]:
        for keys, batch in layout.batches(parquet, rows, whole_order=False):
            stamps, at = _stamps(batch.column(layout.timestamp_field))
            stamp_protos = []
            for t in stamps:
                proto = Timestamp()
                proto.FromDatetime(make_tzaware(t))
                stamp_protos.append(proto.SerializeToString())
            pieces: list[Iterator[bytes]] = []
            for view_fields, stamp_field, columns in zip(
                fields, stamp_fields, _encoded_views(layout.views, batch, False), strict=True
            ):
                for field, column in zip(view_fields, columns, strict=True):
                    pieces.append(column.cells([field + redis_bulk(p) for p in column.protos]))
                pieces.append(map([stamp_field + redis_bulk(p) for p in stamp_protos].__getitem__, at))
            head = b"*%d\r\n$4\r\nHSET\r\n" % (2 + 2 * len(pieces))
            yield [
                (unanswer + redis_bulk(key + project) + answer_fields_packed if unanswer else b"")
                + head
                + redis_bulk(key + project)
                + body
                + (b"*3\r\n$6\r\nEXPIRE\r\n" + redis_bulk(key + project) + expire if expire else b"")
                for key, body in zip(keys, map(b"".join, zip(*pieces, strict=True)), strict=True)
            ]

    total, done = parquet.metadata.num_rows, 0
    for commands in _ahead(packed()):
        send_redis(client, commands, 1 + bool(expire) + bool(unanswer))
        done += len(commands)
        if progress:
            progress(done, total)
    return done


def redis_answer_fields(store: FeatureStore) -> list[bytes]:
    """The Redis hash fields of a customer's stored answer (`features.online_answers`): its two
    features and its timestamp; none in a home registered before answers existed."""
    from feast.errors import FeatureViewNotFoundException
    from feast.infra.online_stores.helpers import _mmh3, compute_versioned_name

    try:
        view = store.get_feature_view(ANSWER_VIEW)
    except FeatureViewNotFoundException:
        return []
    name = compute_versioned_name(view, store.config.registry.enable_online_feature_view_versioning)
    return [_mmh3(f"{name}:{field}") for field in ANSWER_FIELDS] + [f"_ts:{name}".encode()]


def _ahead(items: Iterator[T]) -> Iterator[T]:
    """`items`, each computed in a background thread while the caller uses the previous one: the
    next batch is encoded (Python) while this one is written (SQLite and the socket release the GIL
    while they work). At most two batches are in memory."""
    end = object()
    with ThreadPoolExecutor(1, thread_name_prefix="online-load") as pool:
        pending = pool.submit(next, items, end)
        while (item := pending.result()) is not end:
            pending = pool.submit(next, items, end)
            yield item


def redis_bulk(data: bytes) -> bytes:
    """A Redis protocol bulk string."""
    return b"$%d\r\n%s\r\n" % (len(data), data)


def send_redis(client, commands: list[bytes], replies_each: int) -> None:
    """Send packed commands in bursts on one connection and check every reply; on any error the
    connection is dropped, so no unread reply is left for its next user."""
    pool = client.connection_pool
    connection = pool.get_connection()
    try:
        for start in range(0, len(commands), REDIS_BURST):
            burst = commands[start : start + REDIS_BURST]
            connection.send_packed_command([b"".join(burst)])
            for _ in range(len(burst) * replies_each):
                reply = connection.read_response()
                if isinstance(reply, Exception):
                    raise reply
    except BaseException:
        connection.disconnect()
        raise
    finally:
        pool.release(connection)
