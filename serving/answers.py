"""Precomputed answers: every customer's `predict` answer, computed once by the service's own code
and stored in the online store (`features.online_answers`), so a request is one read.

Scoring publishes them for the date it scored (`publish`); order events store the answers they
recompute (`serving.events`). An answer is stored with the key of what it was computed from besides
the customer's features (`answer_key`): champion and baseline versions and level factors, the
next-order and persona models, the tier policy and the exact tier snapshot, the reason settings and the answer format. The
service serves a stored answer only while that key equals its own, so a reload of other models (or a
newer tier snapshot) never serves an answer of the old ones: until the next publish those customers
are computed per request, as before. Loading features drops the stored answers (see
`features.online_answers`), so an answer never outlives the features it came from.

One rendering for both paths (`answer_json`): a stored answer is the bytes a computed one would be.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from features.catalog import FEATURES_BY_NAME
from features.errors import InputError
from features.feature_repo import JOIN_KEY
from features.feature_store import snapshot_timestamp
from features.files import write_atomically
from features.online_answers import ANSWER_FILE_SCHEMA, NO_ANSWERS_YET
from features.settings import Settings
from serving.schemas import Prediction

if TYPE_CHECKING:
    from serving.predictor import Live, Predictor

#: Changed whenever the answer's JSON changes shape, so answers stored by older code are not served.
ANSWER_FORMAT = 2
#: Customers answered and written per step of a publish.
PUBLISH_CHUNK = 20_000


def answer_json(answer: Mapping) -> bytes:
    """The JSON body of one customer's answer, as `predict` returns it."""
    return Prediction.model_validate(answer).model_dump_json().encode()


def answer_key(live: Live, excluded_views: frozenset[str], tier_snapshot: Path) -> str:
    """The fingerprint of what an answer depends on besides the customer's features (module docstring)."""
    champions = live.champions
    parts = {
        "format": ANSWER_FORMAT,
        "versions": champions.versions,
        "sources": champions.sources,
        "runs": champions.run_ids,
        "level_factors": champions.level_factors,
        "next_order": live.next_order_version,
        "personas": None if live.personas is None else asdict(live.personas),
        "policy": live.lookup.policy.name,
        "tiers": _file_digest(tier_snapshot),
        "excluded": sorted(excluded_views),
    }
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _file_digest(path: Path) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "blake2b").hexdigest()[:32]


@dataclass(frozen=True)
class Published:
    """What a publish stored: the date, how many answers, the customers left to their event answers,
    and the file recording them (Feast's offline source of the answers view)."""

    as_of: date
    answers: int
    skipped: int
    path: Path


def publish(
    settings: Settings, predictor: Predictor, as_of: date, chunk_rows: int = PUBLISH_CHUNK
) -> Published:
    """Compute and store the answer of every customer of the feature snapshot at `as_of`.

    The predictor must be serving that date: its tier snapshot is the one at `as_of` and the online
    store holds that snapshot's features. Customers with an order event on or after `as_of` are left
    alone: their features and answer in the online store are newer than the snapshot.

    Raises:
        InputError: the tier snapshot or the online store is at another date, or the online store
            has no answers view (register it with `tierwise features apply`).
    """
    live = predictor.live
    if live.answers is None:
        raise InputError("the online store has no answers view: run `tierwise features apply`")
    if live.lookup.as_of != as_of:
        raise InputError(
            f"answers for {as_of}: the latest tier snapshot is of {live.lookup.as_of}; "
            f"score {as_of} first (`tierwise score --as-of {as_of}`)"
        )
    parquet = pq.ParquetFile(settings.feature_snapshots.path(as_of))
    names = live.reader.feature_names
    _check_online_date(predictor, parquet, as_of)
    stamp = snapshot_timestamp(as_of)
    schema = ANSWER_FILE_SCHEMA
    written = skipped = 0

    def fill(partial: Path) -> None:
        nonlocal written, skipped
        with pq.ParquetWriter(partial, schema, compression="zstd") as out:
            for batch in parquet.iter_batches(batch_size=chunk_rows, columns=[JOIN_KEY, *names]):
                # Asked again per chunk: events keep arriving while a large publish runs.
                ids, columns = _rows(batch, names, _customers_with_newer_events(settings, as_of))
                skipped += batch.num_rows - len(ids)
                if not ids:
                    continue
                answers = predictor.answers(ids, columns, [as_of] * len(ids))
                rendered = [(a["customer_id"], answer_json(a)) for a in answers]
                live.answers.write(rendered, live.answer_key, stamp)
                out.write_table(
                    pa.table(
                        {
                            JOIN_KEY: ids,
                            "event_timestamp": pa.array([stamp] * len(ids), pa.timestamp("us", tz="UTC")),
                            "answer": [body.decode() for _, body in rendered],
                            "answer_key": [live.answer_key] * len(ids),
                        },
                        schema=schema,
                    )
                )
                written += len(ids)

    path = write_atomically(settings.answers_dir / f"{as_of.isoformat()}.parquet", fill)
    (settings.answers_dir / NO_ANSWERS_YET).unlink(missing_ok=True)
    return Published(as_of, written, skipped, path)


def _rows(batch: pa.RecordBatch, names: list[str], skip: set[str]) -> tuple[list[str], dict[str, list]]:
    """The batch's customers (less `skip`) and their features as the online reader returns them:
    numbers as floats, missing values as None."""
    ids = batch.column(JOIN_KEY).to_pylist()
    keep = [i for i, customer in enumerate(ids) if customer not in skip]
    columns: dict[str, list] = {}
    for name in names:
        column = batch.column(name)
        if FEATURES_BY_NAME[name].dtype == "string":
            values = column.to_pylist()
            columns[name] = [values[i] for i in keep]
        else:
            numbers = column.cast(pa.float64()).to_numpy(zero_copy_only=False)[keep]
            columns[name] = [None if np.isnan(x) else x for x in numbers.tolist()]
    return [ids[i] for i in keep], columns


def _check_online_date(predictor: Predictor, parquet: pq.ParquetFile, as_of: date) -> None:
    """Refuse to publish beside features of another date: a sample of the snapshot's customers must
    be in the online store at `as_of` (or later, moved by an order event)."""
    sample = parquet.read_row_group(0, columns=[JOIN_KEY]).column(0).to_pylist()[:100]
    try:
        rows = predictor.live.reader.read(sample)
    except Exception as exc:  # an online store never loaded has no tables to read
        raise InputError(f"answers for {as_of}: the online store cannot be read ({exc})") from None
    dates = [day for day in rows.as_of if day is not None]
    older = [day for day in dates if day < as_of]
    if not dates or older:
        held = min(older) if older else "no features"
        raise InputError(
            f"answers for {as_of}: the online store holds {held} for its customers; "
            f"load the snapshot first (`tierwise features materialize --as-of {as_of}`)"
        )


def _customers_with_newer_events(settings: Settings, as_of: date) -> set[str]:
    if not settings.events_path.exists():
        return set()
    from features.data.event_log import EventLog

    log = EventLog(settings.events_path)
    try:
        return log.customers_ordering_since(as_of)
    finally:
        log.close()
