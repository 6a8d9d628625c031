"""The order event log: every accepted order event, written durably before it is acknowledged.

One SQLite database per home (`data/events/events.db`), in WAL mode with full syncs, so a commit is on
disk when `append` returns and a killed process loses nothing it acknowledged. The log is keyed by
order id, which makes sending an event twice harmless: the same content again is "already present",
different content under a known id is refused as a conflict (as the import refuses it). Refused
events are kept in the log's `quarantine` table with their reason, field and body.

An event moves through two marks: `applied_at` once the customer's online features and answer were
recomputed with it (a process that dies before that re-applies it at start: recomputing from all
orders is idempotent), and `folded_into` once a batch import wrote it into the canonical tables
(`pipelines.import_data`), after which features read it from there and the log only remembers it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from features.data.content_hash import LENGTH as FINGERPRINT_LENGTH
from features.data.order_events import CheckedEvent
from features.data.validate import Reason

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id TEXT NOT NULL UNIQUE,
    customer_id TEXT NOT NULL,
    ordered_at TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    body TEXT NOT NULL,
    source TEXT NOT NULL,
    received_at TEXT NOT NULL,
    applied_at TEXT,
    folded_into TEXT
);
CREATE INDEX IF NOT EXISTS events_pending ON events (applied_at) WHERE applied_at IS NULL;
CREATE INDEX IF NOT EXISTS events_unfolded ON events (customer_id) WHERE folded_into IS NULL;
CREATE TABLE IF NOT EXISTS quarantine (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at TEXT NOT NULL,
    source TEXT NOT NULL,
    reason TEXT NOT NULL,
    field TEXT,
    message TEXT,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tier_changes (
    customer_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    changed_at TEXT NOT NULL,
    from_tier TEXT,
    to_tier TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (customer_id, order_id)
);
"""


@dataclass(frozen=True)
class Outcome:
    """What the log did with one event: `accepted` (new), `present` (the same order again) or
    `refused` (quarantined, with the reason and field)."""

    index: int
    status: str
    order_id: str | None
    customer_id: str | None
    reason: str | None = None
    field: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class LoggedEvent:
    seq: int
    order_id: str
    customer_id: str
    ordered_at: datetime
    body: dict


class EventLog:
    """The home's order event log. Safe to share between threads; processes serialize on SQLite."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def append(
        self,
        checked: Sequence[CheckedEvent],
        *,
        source: str,
        now: datetime,
        known_orders: dict[str, str] | None = None,
    ) -> list[Outcome]:
        """Log the valid events and quarantine the refused ones, in one durable transaction.

        Args:
            checked: `check_events` output.
            source: Where they came from (`api`, a file name), kept with each row.
            now: The receiving time.
            known_orders: Content hashes of orders already in the canonical tables by order id (for
                the events' customers): an event for one of them is present or a conflict, as a
                re-imported row would be.
        """
        received = now.astimezone(UTC).isoformat()
        known_orders = known_orders or {}
        outcomes = []
        with self._lock, self._transaction() as db:
            for event in checked:
                outcome = self._classify(db, event, known_orders)
                if outcome.status == "accepted":
                    db.execute(
                        "INSERT INTO events (order_id, customer_id, ordered_at, content_hash, body, source, "
                        "received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            event.order_id,
                            event.customer_id,
                            event.ordered_at.astimezone(UTC).isoformat(),  # type: ignore[union-attr]
                            event.content_hash,
                            json.dumps(event.body, sort_keys=True),
                            source,
                            received,
                        ),
                    )
                elif outcome.status == "refused":
                    db.execute(
                        "INSERT INTO quarantine (received_at, source, reason, field, message, body) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            received,
                            source,
                            outcome.reason,
                            outcome.field,
                            outcome.message,
                            json.dumps(event.body, sort_keys=True, default=str),
                        ),
                    )
                outcomes.append(outcome)
        return outcomes

    def _classify(self, db: sqlite3.Connection, event: CheckedEvent, known_orders: dict[str, str]) -> Outcome:
        if not event.ok:
            return Outcome(event.index, "refused", None, None, event.reason, event.field, event.message)
        row = db.execute(
            "SELECT content_hash, body FROM events WHERE order_id = ?", (event.order_id,)
        ).fetchone()
        known = row[0] if row else known_orders.get(event.order_id)  # type: ignore[arg-type]
        if known is None:
            return Outcome(event.index, "accepted", event.order_id, event.customer_id)
        if row and len(known) != FINGERPRINT_LENGTH:
            # Logged by an older Tierwise with another fingerprint: the same body is the same order.
            same = row[1] == json.dumps(event.body, sort_keys=True)
        else:
            same = known == event.content_hash
        if same:
            return Outcome(event.index, "present", event.order_id, event.customer_id)
        return Outcome(
            event.index,
            "refused",
            event.order_id,
            event.customer_id,
            Reason.CONFLICTS_WITH_EXISTING_ORDER,
            "order_id",
            f"order_id: {event.order_id!r} is already known with different content",
        )

    def pending(self) -> list[LoggedEvent]:
        """Accepted events not yet applied, oldest first."""
        return self._events("WHERE applied_at IS NULL ORDER BY seq")

    def unfolded(self, customers: Iterable[str] | None = None) -> list[LoggedEvent]:
        """Accepted events not yet in the canonical tables (of `customers`, or all), oldest first."""
        if customers is None:
            return self._events("WHERE folded_into IS NULL ORDER BY seq")
        wanted = sorted(set(customers))
        marks = ",".join("?" * len(wanted))
        return self._events(f"WHERE folded_into IS NULL AND customer_id IN ({marks}) ORDER BY seq", wanted)

    def mark_applied(self, seqs: Sequence[int], now: datetime) -> None:
        self._mark("applied_at", now.astimezone(UTC).isoformat(), seqs)

    def mark_folded(self, seqs: Sequence[int], import_id: str) -> None:
        self._mark("folded_into", import_id, seqs)

    def record_tier_change(
        self, customer_id: str, order_id: str, now: datetime, from_tier: str | None, to_tier: str, reason: str
    ) -> bool:
        """Remember a tier change an event caused (once per customer and order); False if known."""
        with self._lock, self._transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO tier_changes VALUES (?, ?, ?, ?, ?, ?)",
                (customer_id, order_id, now.astimezone(UTC).isoformat(), from_tier, to_tier, reason),
            )
            return cursor.rowcount == 1

    def tier_changes(self, since: datetime | None = None) -> list[dict]:
        """Tier changes events caused (after `since`), oldest first."""
        query = "SELECT * FROM tier_changes"
        args: tuple = ()
        if since is not None:
            query, args = query + " WHERE changed_at >= ?", (since.astimezone(UTC).isoformat(),)
        return self._records(query + " ORDER BY changed_at, customer_id", args)

    def tier_changes_by_orders(self, start: date | None, end: date) -> dict[str, dict]:
        """The latest tier change per customer caused by an order placed in [start, end) (UTC days;
        `start` None: from the beginning), with the order's time: what the next batch snapshot
        explains its change by."""
        changes = self._records(
            """SELECT t.customer_id, t.order_id, e.ordered_at, t.from_tier, t.to_tier
            FROM tier_changes t JOIN events e USING (order_id)
            WHERE e.ordered_at >= ? AND e.ordered_at < ? ORDER BY e.ordered_at""",
            ((start or date.min).isoformat(), end.isoformat()),
        )
        return {change["customer_id"]: change for change in changes}

    def customers_ordering_since(self, day: date) -> set[str]:
        """Customers with a logged order on or after `day` (UTC): their online features are newer
        than a snapshot of `day`."""
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT customer_id FROM events WHERE ordered_at >= ?", (day.isoformat(),)
            ).fetchall()
        return {customer for (customer,) in rows}

    def quarantined(self) -> list[dict]:
        """Refused events, oldest first: when, from where, why, and the body as sent."""
        return self._records("SELECT * FROM quarantine ORDER BY seq")

    def _records(self, query: str, args: Sequence[str] = ()) -> list[dict]:
        """The rows of `query` as dicts by column name."""
        with self._lock:
            cursor = self._db.execute(query, args)
            names = [c[0] for c in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def counts(self) -> dict[str, int]:
        """Events logged, pending (not applied), unfolded, and quarantined."""
        with self._lock:
            row = self._db.execute(
                "SELECT count(*), count(*) FILTER (WHERE applied_at IS NULL), "
                "count(*) FILTER (WHERE folded_into IS NULL), (SELECT count(*) FROM quarantine) FROM events"
            ).fetchone()
        return dict(zip(("logged", "pending", "unfolded", "quarantined"), row, strict=True))

    def _events(self, where: str, args: Sequence[str] = ()) -> list[LoggedEvent]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT seq, order_id, customer_id, ordered_at, body FROM events {where}", args
            ).fetchall()
        return [
            LoggedEvent(seq, order_id, customer, datetime.fromisoformat(at), json.loads(body))
            for seq, order_id, customer, at, body in rows
        ]

    def _mark(self, column: str, value: str, seqs: Sequence[int]) -> None:
        with self._lock, self._transaction() as db:
            db.executemany(f"UPDATE events SET {column} = ? WHERE seq = ?", [(value, s) for s in seqs])

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT (or ROLLBACK on error): the writer lock is taken up front, so two
    processes appending at once wait for each other instead of failing halfway."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, kind: object, *_: object) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")
