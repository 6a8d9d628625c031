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

One model renders both paths (`Prediction`: `answer_json` for a computed answer, `snapshot_answers` for
a snapshot's rows): a stored answer is the bytes a computed one would be.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from features.errors import InputError
from features.feature_repo import JOIN_KEY
from features.feature_store import snapshot_timestamp
from features.files import write_atomically
from features.forked import FORKS, worker_pool
from features.model_table import MODELS
from features.online_answers import ANSWER_FILE_SCHEMA, NO_ANSWERS_YET
from features.settings import Settings
from serving.schemas import Prediction
from tiering.lookup import caller_rule
from tiering.risk import flag_lists
from training.champions import LEVEL_FACTOR_COLUMNS
from training.offers import split_offers

if TYPE_CHECKING:
    from serving.predictor import Live, Predictor

#: Changed whenever the answer's JSON changes shape, so answers stored by older code are not served.
ANSWER_FORMAT = 2
#: Customers answered and written per step of a publish.
PUBLISH_CHUNK = 20_000
#: Processes rendering a publish's answers: one per core (this one writes them meanwhile).
RENDERERS = os.cpu_count() or 1


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
    settings: Settings,
    predictor: Predictor,
    as_of: date,
    chunk_rows: int = PUBLISH_CHUNK,
    processes: int = RENDERERS,
) -> Published:
    """Store the answer of every customer of the tier snapshot at `as_of`, rendered from the snapshot.

    Scoring computed everything an answer holds (predictions, interval, tier, reasons as the API
    gives them, next order, persona, offers), so nothing is predicted again: each row becomes the
    answer `predict` computes for that customer from the same features (a test compares every one).
    The predictor must be serving that date with the models that scored it: its tier snapshot is the
    one at `as_of` and the online store holds that snapshot's features. Customers with an order event
    on or after `as_of` are left alone: their features and answer in the online store are newer than
    the snapshot.

    Rendering is Python held by the GIL: `processes` forked workers render chunks of rows while
    this process writes the chunks before them, in order.

    Raises:
        InputError: the tier snapshot or the online store is at another date, the snapshot was scored
            by other models than the live ones, or the online store has no answers view (register it
            with `tierwise features apply`).
    """
    live = predictor.live
    if live.answers is None:
        raise InputError("the online store has no answers view: run `tierwise features apply`")
    if live.lookup.as_of != as_of:
        raise InputError(
            f"answers for {as_of}: the latest tier snapshot is of {live.lookup.as_of}; "
            f"score {as_of} first (`tierwise score --as-of {as_of}`)"
        )
    snapshot = pq.ParquetFile(settings.tier_snapshots(live.lookup.policy.name).path(as_of))
    _check_scored_by(live, snapshot, as_of)
    _check_online_date(predictor, snapshot, as_of)
    stamp = snapshot_timestamp(as_of)
    schema = ANSWER_FILE_SCHEMA
    written = skipped = 0

    def fill(partial: Path) -> None:
        nonlocal written, skipped
        with pq.ParquetWriter(partial, schema, compression="zstd") as out:
            batches = snapshot.iter_batches(batch_size=chunk_rows, columns=_answer_columns(snapshot))
            for rows, everyone in _rendered(batches, live, as_of, processes):
                # Asked again per chunk: events keep arriving while a large publish runs.
                newer = _customers_with_newer_events(settings, as_of)
                rendered = [(customer, body) for customer, body in everyone if customer not in newer]
                skipped += rows - len(rendered)
                if not rendered:
                    continue
                live.answers.write(rendered, live.answer_key, stamp)
                out.write_table(
                    pa.table(
                        {
                            JOIN_KEY: [customer for customer, _ in rendered],
                            "event_timestamp": pa.array(
                                [stamp] * len(rendered), pa.timestamp("us", tz="UTC")
                            ),
                            "answer": [body.decode() for _, body in rendered],
                            "answer_key": [live.answer_key] * len(rendered),
                        },
                        schema=schema,
                    )
                )
                written += len(rendered)

    path = write_atomically(settings.answers_dir / f"{as_of.isoformat()}.parquet", fill)
    (settings.answers_dir / NO_ANSWERS_YET).unlink(missing_ok=True)
    return Published(as_of, written, skipped, path)


def _rendered(
    batches: Iterator[pa.RecordBatch], live: Live, as_of: date, processes: int
) -> Iterator[tuple[int, list[tuple[str, bytes]]]]:
    """Each batch's row count and answers (`snapshot_answers`), in order: rendered by `processes`
    workers, at most one batch more than them in flight (memory stays a few chunks), or here."""
    pool = worker_pool(processes if FORKS else 0, _adopt, (live,))
    if pool is None:
        for batch in batches:
            yield batch.num_rows, snapshot_answers(batch, live, as_of)
        return
    with pool:
        flight: deque[tuple[int, Future]] = deque()
        for batch in batches:
            flight.append((batch.num_rows, pool.submit(_render, batch, as_of)))
            if len(flight) > processes:
                rows, answers = flight.popleft()
                yield rows, answers.result()
        while flight:
            rows, answers = flight.popleft()
            yield rows, answers.result()


#: The live models of a rendering worker, inherited from the publishing process.
_worker_live: Live | None = None


def _adopt(live: Live) -> None:
    global _worker_live
    _worker_live = live


def _render(batch: pa.RecordBatch, as_of: date) -> list[tuple[str, bytes]]:
    assert _worker_live is not None, "a rendering worker adopts the live models first"
    return snapshot_answers(batch, _worker_live, as_of)


#: Tier snapshot columns an answer is rendered from, besides each model's prediction and reasons.
ANSWER_SOURCE_COLUMNS = [
    "customer_id",
    "expected_value_low",
    "expected_value_high",
    "tier",
    "reason",
    "change",
    "p_order_7d",
    "p_order_30d",
    "expected_next_order_days",
    "persona_id",
    "persona",
    "offers",
    "offer_reasons",
]


#: Tier snapshot columns of each model's reasons as the API answers them (JSON lists of `Reason`,
#: `training.reasons.reason_details`), written by scoring.
REASON_DETAIL_COLUMNS = {name: f"{name}_reason_details" for name in MODELS}


def _answer_columns(snapshot: pq.ParquetFile) -> list[str]:
    wanted = [
        *ANSWER_SOURCE_COLUMNS,
        *(MODELS[name].output for name in MODELS),
        *REASON_DETAIL_COLUMNS.values(),
    ]
    present = set(snapshot.schema_arrow.names)
    return [column for column in wanted if column in present]


def snapshot_answers(batch: pa.RecordBatch, live: Live, as_of: date) -> list[tuple[str, bytes]]:
    """The answer bodies of a tier snapshot's rows, as `predict` renders them for the same customers
    from the snapshot's features with the models that scored it.

    Each row is written as JSON text, the reasons spliced in as the snapshot holds them (already
    JSON), and rendered by the model `answer_json` renders with (`Prediction`, validated from that
    text in one call): the same bytes, without a dictionary and a `Reason` object per reason per
    customer, which cost a quarter more per answer (20,000 snapshot rows: about 80 against 60 µs)."""
    columns = {name: batch.column(name) for name in batch.schema.names}
    ids = columns["customer_id"].to_pylist()

    def numbers(name: str) -> np.ndarray:
        if name not in columns:
            return np.full(len(ids), np.nan)
        return columns[name].cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)

    def texts(name: str) -> list:
        return columns[name].to_pylist() if name in columns else [None] * len(ids)

    churn, value, growth = (numbers(c) for c in ("churn_probability", "expected_value", "growth_potential"))
    flags = flag_lists(churn, value, growth, live.lookup.value_cut)
    churn, value, growth = (list(map(_json_number, v.tolist())) for v in (churn, value, growth))
    has_interval = "expected_value_low" in columns and "customer_value" in live.champions.bundles
    low, high = (
        list(map(_json_number, numbers(c).tolist())) for c in ("expected_value_low", "expected_value_high")
    )
    p7, p30, days = (numbers(c).tolist() for c in ("p_order_7d", "p_order_30d", "expected_next_order_days"))
    tiers, rules, changes = texts("tier"), texts("reason"), texts("change")
    persona_ids, persona_names = texts("persona_id"), texts("persona")
    offers, offer_reasons = texts("offers"), texts("offer_reasons")
    champions = live.champions
    explained = [(_text(name), texts(REASON_DETAIL_COLUMNS[name])) for name in champions.bundles]
    by_baseline = "".join(f",{_text(name)}:[]" for name in [*champions.fallbacks, *champions.unanswered])
    horizon = f'"horizon_days":{_json(champions.horizon_days)},'
    tail = (
        f',"model_versions":{_json(champions.versions)},"model_sources":{_json(champions.sources)},'
        f'"features_as_of":{_json(as_of)}}}'
    )
    render = Prediction.model_validate_json
    answers = []
    for i, customer in enumerate(ids):
        next_order = (
            "" if live.next_order is None else _fields(next_order_answer(p7[i], p30[i], days[i], as_of))
        )
        found = None if offers[i] is None else (offers[i], offer_reasons[i])
        offered, note = offers_answer(live.lookup.has_offers, found, as_of)
        persona = None if persona_ids[i] is None else {"id": persona_ids[i], "name": persona_names[i]}
        reasons = ",".join(f"{name}:{details[i] or '[]'}" for name, details in explained)
        text = (
            f'{{"customer_id":{_text(customer)},"status":"ok","churn_probability":{churn[i]},'
            f'"expected_value":{value[i]},'
            f'"expected_value_interval":{f"[{low[i]},{high[i]}]" if has_interval else "null"},'
            f'"growth_potential":{growth[i]},{horizon}"tier":{_json(tiers[i])},'
            f'"tier_rule":{_json(caller_rule(changes[i], rules[i]))},"tier_source":"snapshot",{next_order}'
            f'"persona":{_json(persona)},"offers":{_json(offered)},"offers_note":{_json(note)},'
            f'"risk_flags":{_json(flags[i])},"reasons":{{{reasons}{by_baseline}}}{tail}'
        )
        answers.append((customer, render(text).model_dump_json().encode()))
    return answers


#: A string as a JSON string: the standard encoder's own C function, without `json.dumps`' set-up per call.
_text = encode_basestring_ascii


def _json_number(value: float) -> str:
    """A number as JSON text `Prediction` reads back as the same float; NaN (no answer) as NaN, which
    the answer renders as null, as it renders a missing number in the computed path."""
    return repr(value) if math.isfinite(value) else "NaN"


def _fields(answer: dict) -> str:
    """Some fields of an answer as JSON members, each followed by a comma."""
    return "".join(f"{_text(key)}:{_json(value)}," for key, value in answer.items())


def _json(value: object) -> str:
    """A field's value as JSON text, the answer's few kinds spelled directly (`json.dumps` costs more
    than the rest of an answer's fields together): numbers, text, dates, lists and dictionaries of
    them, None."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, float):
        return _json_number(value)
    if isinstance(value, date):
        return f'"{value.isoformat()}"'
    if isinstance(value, list):
        return "[" + ",".join(map(_json, value)) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_text(key)}:{_json(item)}" for key, item in value.items()) + "}"
    return json.dumps(value)


def next_order_answer(p7: float, p30: float, days: float, as_of: date | None) -> dict:
    """The next-order fields of an answer: P(order within 7 and 30 days), the expected days to the next
    order and its date (both None beyond the horizon; the date also when the features' date is unknown)."""
    known = not math.isnan(days)
    return {
        "p_order_7d": p7,
        "p_order_30d": p30,
        "expected_next_order_days": days if known else None,
        "expected_next_order_date": as_of + timedelta(days=days) if known and as_of is not None else None,
    }


def offers_answer(
    has_offers: bool, found: tuple[str, str] | None, as_of: date
) -> tuple[list[dict] | None, str | None]:
    """A customer's offers from the batch snapshot of `as_of` (`found`: its joined items and reasons, or
    None), or None and why there are none."""
    if not has_offers:
        return None, "no offers: the data has no products on its order lines"
    if found is None:
        return None, f"no offers for this customer in the batch of {as_of.isoformat()}"
    return split_offers(*found), None


def optional_number(value: float) -> float | None:
    """A prediction as JSON: None where the model does not answer (NaN)."""
    return None if math.isnan(value) else float(value)


def _check_scored_by(live: Live, snapshot: pq.ParquetFile, as_of: date) -> None:
    """Refuse to publish a snapshot scored by other models than the predictor's: its answers would be
    stored under the key of models that did not compute them."""
    wanted = [
        *(MODELS[name].version_column for name in live.champions.versions),
        *LEVEL_FACTOR_COLUMNS.values(),
        "persona_id",
        "p_order_7d",
    ]
    present = [column for column in wanted if column in snapshot.schema_arrow.names]
    first = next(snapshot.iter_batches(batch_size=1, columns=present), None)
    if first is None or first.num_rows == 0:
        return
    row = first.to_pylist()[0]
    versions = {name: row.get(MODELS[name].version_column) for name in live.champions.versions}
    factors = {
        name: row.get(column)
        for name, column in LEVEL_FACTOR_COLUMNS.items()
        if name in live.champions.bundles
    }
    if (
        versions != live.champions.versions
        or factors != {name: live.champions.level_factor(name) for name in factors}
        or (row.get("persona_id") is None) != (live.personas is None)
        or (live.next_order is not None and row.get("p_order_7d") is None)
    ):
        raise InputError(
            f"answers for {as_of}: the tier snapshot was scored by other models than the live ones; "
            f"score {as_of} again (`tierwise score --as-of {as_of}`)"
        )


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
