"""Whole answers per customer in Feast's online store: written by batch scoring and order events,
read by `predict` in one read.

An answer is the service's JSON for one customer (predictions, tier, flags, reasons), stored as the
String feature `answer` of the feature view `customer_answers`, beside `answer_key`: the fingerprint
of everything besides the customer's features that the answer was computed from (models, policy, tier
snapshot, reason settings; see `serving.answers`). A stored answer is served only while its key equals
the service's; otherwise the service computes the answer from the features, as without answers.

Features and answers move together: loading a snapshot into the online store
(`features.feature_store.materialize`) leaves no answer behind, so an answer is never served beside
features newer or older than the ones it was computed from. On SQLite the new database file is made
with an empty answers table; on Redis the load deletes each customer's answer in the same burst as it
writes their features. Scoring then publishes the answers for the features just loaded.

The bytes are Feast's own (as `features.online_writer` writes features): the value protos and
`value_text` on SQLite, field hashes and `_ts:` timestamps on Redis, so Feast's
`get_online_features` reads the same answers. With `features.online_reader` and
`features.online_writer`, this is one of the modules that reach past Feast's public API
(`tests/test_layering.py`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from features.data.duck import sql_identifier
from features.feature_repo import ANSWER_FIELDS, ANSWER_VIEW, JOIN_KEY
from features.files import write_atomically
from features.online_reader import ReadOnlyFile
from features.online_writer import REDIS_BURST, redis_answer_fields, redis_bulk, send_redis, upsert_statement

if TYPE_CHECKING:
    from feast import FeatureStore

#: Columns of a published answers file (`serving.answers.publish`), Feast's offline source of the view.
ANSWER_FILE_SCHEMA = pa.schema(
    [
        (JOIN_KEY, pa.string()),
        ("event_timestamp", pa.timestamp("us", tz="UTC")),
        ("answer", pa.string()),
        ("answer_key", pa.string()),
    ]
)
#: The file registering leaves in an answers folder without any: Feast's own `materialize` of every
#: view (`feast materialize`) reads the answers view's source too, and fails on a folder without files.
NO_ANSWERS_YET = "no-answers-yet.parquet"

#: How long a writer waits for the service's readers (and they for it) before failing, in seconds.
BUSY_TIMEOUT = 30.0

#: Redis's side of "an answer dated later is kept": one customer's answer is set (HSET of ARGV[3..])
#: unless the stored answer's timestamp (field ARGV[1], Feast's serialized protobuf `Timestamp`)
#: has more seconds than the new one (ARGV[2]); atomic, as a script runs alone on the server. The
#: seconds are the protobuf's field 1, a varint after the tag byte 8 (no field: 0 s, the epoch).
KEEP_NEWER_SCRIPT = """
local stored = redis.call('HGET', KEYS[1], ARGV[1])
if stored then
  local seconds, scale = 0, 1
  if #stored > 0 and string.byte(stored, 1) == 8 then
    for i = 2, #stored do
      local byte = string.byte(stored, i)
      seconds = seconds + (byte % 128) * scale
      if byte < 128 then break end
      scale = scale * 128
    end
  end
  if seconds > tonumber(ARGV[2]) then return 0 end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
return 1
"""


class OnlineAnswers:
    """Read and write stored answers of one home's online store (SQLite or Redis)."""

    def __init__(self, store: FeatureStore):
        from feast.infra.key_encoding_utils import serialize_entity_key
        from feast.infra.online_stores.helpers import compute_table_id

        config = store.config
        self._store = store
        self._view = store.get_feature_view(ANSWER_VIEW)
        self._provider = store._get_provider()
        self._serialize = lambda customer: serialize_entity_key(
            _entity_key(customer), entity_key_serialization_version=config.entity_key_serialization_version
        )
        versioning = config.registry.enable_online_feature_view_versioning
        self.sqlite = config.online_store.type == "sqlite"
        if self.sqlite:
            table = compute_table_id(config.project, self._view, versioning)
            self._table = table
            self._path = self._provider.online_store._get_db_path(config)
            self._file = ReadOnlyFile(self._path)
        else:
            self._project = config.project.encode()
            # The answer's, its key's and its timestamp's hash fields, as Redis protocol bulk strings.
            self._fields = [redis_bulk(field) for field in redis_answer_fields(store)]

    def read(self, customer_ids: Sequence[str]) -> list[tuple[str, bytes] | None]:
        """(answer key, answer JSON) per customer, in order; None where none is stored."""
        if self.sqlite:
            return self._read_sqlite(customer_ids)
        rows = self._provider.online_read(
            config=self._store.config,
            table=self._view,
            entity_keys=[_entity_key(c) for c in customer_ids],
            requested_features=list(ANSWER_FIELDS),
        )
        found: list[tuple[str, bytes] | None] = []
        for _, values in rows:
            answer, key = (values or {}).get("answer"), (values or {}).get("answer_key")
            if answer is None or key is None or not answer.HasField("string_val"):
                found.append(None)
            else:
                found.append((key.string_val, answer.string_val.encode()))
        return found

    def _read_sqlite(self, customer_ids: Sequence[str]) -> list[tuple[str, bytes] | None]:
        keys = [self._serialize(c) for c in customer_ids]
        distinct = list(dict.fromkeys(keys))
        sql = (
            f"SELECT entity_key, feature_name, value_text FROM {sql_identifier(self._table)} "
            f"WHERE entity_key IN ({','.join('?' * len(distinct))})"
        )
        texts: dict[bytes, dict[str, str]] = {}
        for key, name, text in self._file.connection().execute(sql, distinct):
            if text is not None:
                texts.setdefault(key, {})[name] = text
        found: list[tuple[str, bytes] | None] = []
        for key in keys:
            stored = texts.get(key, {})
            found.append(
                (stored["answer_key"], stored["answer"].encode())
                if "answer" in stored and "answer_key" in stored
                else None
            )
        return found

    def write(self, answers: Sequence[tuple[str, bytes]], key: str, at: datetime) -> None:
        """Store (customer id, answer JSON) pairs under `key`, dated `at` (the features' date), each
        customer whole: on SQLite in one transaction, on Redis one script per customer
        (`KEEP_NEWER_SCRIPT`). Either way an answer dated later (an order event's, stored while
        scoring published) is kept."""
        if not answers:
            return
        if self.sqlite:
            self._write_sqlite(answers, key, at)
        else:
            self._write_redis(answers, key, at)

    def _write_sqlite(self, answers: Sequence[tuple[str, bytes]], key: str, at: datetime) -> None:
        from feast.infra.online_stores.sqlite import adapt_datetime_epoch
        from feast.utils import to_naive_utc

        epoch = adapt_datetime_epoch(to_naive_utc(at))
        key_proto = _string_proto(key)
        rows = []
        for customer, answer in answers:
            entity = self._serialize(customer)
            text = answer.decode()
            rows.append((entity, "answer", _string_proto(text), text, epoch))
            rows.append((entity, "answer_key", key_proto, key, epoch))
        with closing(sqlite3.connect(self._path, timeout=BUSY_TIMEOUT, isolation_level=None)) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(upsert_statement(self._table, 1, newer_only=True), rows)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def _write_redis(self, answers: Sequence[tuple[str, bytes]], key: str, at: datetime) -> None:
        from feast.utils import make_tzaware
        from google.protobuf.timestamp_pb2 import Timestamp

        stamp = Timestamp()
        stamp.FromDatetime(make_tzaware(at))
        answer_field, key_field, stamp_field = self._fields
        client = self._provider.online_store._get_client(self._store.config.online_store)
        # Loaded on every write (idempotent, one round trip): a restarted Redis has forgotten it.
        script = redis_bulk(client.script_load(KEEP_NEWER_SCRIPT).encode())
        head = b"*12\r\n$7\r\nEVALSHA\r\n" + script + redis_bulk(b"1")
        tail = (
            stamp_field
            + redis_bulk(str(stamp.seconds).encode())
            + key_field
            + redis_bulk(_string_proto(key))
            + stamp_field
            + redis_bulk(stamp.SerializeToString())
            + answer_field
        )
        commands = [
            head
            + redis_bulk(self._serialize(customer) + self._project)
            + tail
            + redis_bulk(_string_proto(answer.decode()))
            for customer, answer in answers
        ]
        for start in range(0, len(commands), REDIS_BURST):
            send_redis(client, commands[start : start + REDIS_BURST], 1)


def ensure_answer_files(folder: Path) -> None:
    """Leave an empty answers file in `folder` if it holds none (see `NO_ANSWERS_YET`)."""
    if not any(folder.glob("*.parquet")):
        write_atomically(
            folder / NO_ANSWERS_YET, lambda partial: pq.write_table(ANSWER_FILE_SCHEMA.empty_table(), partial)
        )


def _entity_key(customer: str):
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    return EntityKey(join_keys=[JOIN_KEY], entity_values=[Value(string_val=str(customer))])


def _string_proto(text: str) -> bytes:
    from feast.protos.feast.types.Value_pb2 import Value

    return Value(string_val=text).SerializeToString()
