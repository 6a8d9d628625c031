"""Order events, end to end: check, log durably, recompute the customers' features, push, re-answer.

`OrderEvents.submit` is what `POST /orders` and `tierwise data push` call. In one serialized step,
shared by the requests that arrive meanwhile, it checks the events by the import's rules
(`features.data.order_events`), classifies them against the log and the customers' imported orders,
commits the accepted ones to the event log (the acknowledgement waits for that commit), and then
applies every pending event: the touched customers' features are recomputed by the batch feature
query (`features.event_features`) and pushed to the online store through the Feast push source, so
the next `predict` answers from them, with the tier the policy and retention give
(`TierLookup.retier`); their new answers are stored (`serving.answers`) before the request is
acknowledged.

A process that dies after the commit and before the push leaves the events pending; the next start
applies them (`apply_pending`). Applying twice is harmless: features are recomputed from the set of
orders, not incremented. A tier change is recorded once per customer and order in the log, written
as one JSON log line (`tierwise.tier_changes`) for a CRM to follow, and returned once: in the receipt
of the request that sent the order, or by `apply_pending`. The service counts what they return.
"""

from __future__ import annotations

import json
import logging
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

import pandas as pd

from features.data.event_log import EventLog, LoggedEvent, Outcome
from features.data.order_events import check_requests
from features.data.shop import import_time_zone
from features.data.store import DataStore
from features.event_features import EventFeatures, event_cutoff, pushed_frame
from features.feature_repo import PUSH_SOURCE
from features.settings import Settings

if TYPE_CHECKING:
    from serving.predictor import Predictor

tier_log = logging.getLogger("tierwise.tier_changes")


@dataclass(frozen=True)
class TierChange:
    """A customer's tier moved because of an order."""

    customer_id: str
    order_id: str
    from_tier: str | None
    to_tier: str
    reason: str


@dataclass
class _Submission:
    """One request's events on their way through the shared check."""

    bodies: Sequence[object]
    source: str
    received: datetime = field(default_factory=lambda: datetime.now(UTC))
    outcomes: list[Outcome] | None = None
    error: Exception | None = None


@dataclass
class Receipt:
    """What a submission did: one outcome per event, and the tier changes the applied events caused."""

    outcomes: list[Outcome]
    tier_changes: list[TierChange] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)


class OrderEvents:
    """The home's event log plus what applies it. One instance per process; thread-safe."""

    def __init__(
        self,
        settings: Settings,
        predictor: Callable[[], Predictor | None],
    ) -> None:
        from features import feature_store

        self.settings = settings
        self.log = EventLog(settings.events_path)
        self.features = EventFeatures(settings)  # applying
        self.checks = EventFeatures(settings)  # checking, on its own connection: both run at once
        self.store = feature_store.open_store(settings)
        if PUSH_SOURCE not in {source.name for source in self.store.list_data_sources()}:
            # A home registered before events existed: registering the definitions again (idempotent)
            # adds the push source, without touching the online store's data.
            self.store = feature_store.apply(settings)
        self._predictor = predictor
        self._checking = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queued: list[_Submission] = []  # submissions waiting for the check lock
        self._applying = threading.Lock()
        #: Tier changes by the order that caused them, until the request that sent it collects them.
        self._changes: dict[str, TierChange] = {}

    def close(self) -> None:
        self.features.close()
        self.checks.close()
        self.log.close()

    def submit(self, bodies: Sequence[object], source: str) -> Receipt:
        """Check, log and apply `bodies` (order events as parsed JSON); see the module docstring.

        Requests arriving together are checked together and applied together. Whichever request
        holds the check lock checks every request queued behind it in one pass (the import's SQL and
        the customers' known orders run once, each request logged in its own transaction); whichever
        holds the apply lock applies every pending event, the others' included, which costs little
        more than one (the customers' rows are read and the feature query run once). A request whose
        events were checked or applied that way returns without doing it again, and each request
        collects its own tier changes."""
        submission = _Submission(bodies, source)
        with self._queue_lock:
            self._queued.append(submission)
        with self._checking:
            if submission.outcomes is None and submission.error is None:
                with self._queue_lock:
                    batch, self._queued = self._queued, []
                self._check(batch)
        if submission.error is not None:
            raise submission.error
        outcomes = submission.outcomes or []
        with self._applying:
            pending = self.log.pending()
            sent = {outcome.order_id for outcome in outcomes}
            # A request whose events another request's apply took along has nothing left to wait
            # for; applying the newer arrivals here instead would leave one event per apply.
            if any(event.order_id in sent for event in pending):
                self._apply(pending, submission.received)
            mine = [self._changes.pop(o.order_id) for o in outcomes if o.order_id in self._changes]
        return Receipt(outcomes, mine)

    def _check(self, batch: list[_Submission]) -> None:
        """Check and log the queued submissions at once; an error is each unlogged one's error."""
        try:
            now = datetime.now(UTC)
            zone = import_time_zone(DataStore(self.settings.data_dir).live_version(), None)
            checked = check_requests(self.checks.con, [s.bodies for s in batch], now=now, timezone=zone)
            customers = sorted({e.customer_id for events in checked for e in events if e.ok})  # type: ignore[type-var]
            known = self.checks.known_orders(customers) if customers else {}
            for submission, events in zip(batch, checked, strict=True):
                submission.received = now
                submission.outcomes = self.log.append(
                    events, source=submission.source, now=now, known_orders=known
                )
        except Exception as error:
            for submission in batch:
                if submission.outcomes is None:
                    submission.error = error

    def apply_pending(self) -> list[TierChange]:
        """Apply events logged but not applied (a process stopped in between); at start-up."""
        with self._applying:
            changes = self._apply(self.log.pending(), datetime.now(UTC))
            for change in changes:
                self._changes.pop(change.order_id, None)
            return changes

    def _apply(self, pending: list[LoggedEvent], now: datetime) -> list[TierChange]:
        if not pending:
            return []
        customers = sorted({event.customer_id for event in pending})
        predictor = self._predictor()
        before = self._tiers(predictor, customers)
        unfolded = self.log.unfolded(customers)
        served = self.settings.feature_snapshots.dates()
        floor = served[-1] if served else date.min
        by_day: dict[date, list[str]] = {}
        for customer in customers:
            # A pending event may already be imported (an import folded it first): it counts too.
            latest = max(
                event_cutoff(e.ordered_at) for e in [*pending, *unfolded] if e.customer_id == customer
            )
            by_day.setdefault(max(latest, floor), []).append(customer)
        frames = [
            self.features.compute(group, [e for e in unfolded if e.customer_id in group], day)
            for day, group in by_day.items()
        ]
        pushed = pushed_frame(pd.concat(frames, ignore_index=True))
        with warnings.catch_warnings():
            # Feast skips, with a warning, a view whose features are all missing for the rows pushed
            # (customers without household data): expected here, and the reader dates rows by the
            # newest view (`features.online_reader`).
            warnings.filterwarnings("ignore", "Cannot write dataframe with empty feature columns")
            self.store.push(PUSH_SOURCE, pushed)
        changes = self._tier_changes(predictor, customers, before, pending, now)
        self.log.mark_applied([event.seq for event in pending], now)
        return changes

    def _tier_changes(
        self,
        predictor: Predictor | None,
        customers: list[str],
        before: dict[str, str | None],
        pending: list[LoggedEvent],
        now: datetime,
    ) -> list[TierChange]:
        if predictor is None:
            return []
        last_order = {event.customer_id: event.order_id for event in pending}
        changes = []
        for answer in predictor.refresh_answers(customers):
            customer = answer["customer_id"]
            tier = answer.get("tier")
            if tier is None or tier == before.get(customer):
                continue
            change = TierChange(
                customer, last_order[customer], before.get(customer), tier, answer["tier_rule"]
            )
            if self.log.record_tier_change(
                customer, change.order_id, now, change.from_tier, tier, change.reason
            ):
                tier_log.info(json.dumps({"event": "tier_change", "at": now.isoformat(), **asdict(change)}))
                self._changes[change.order_id] = change
                changes.append(change)
        return changes

    @staticmethod
    def _tiers(predictor: Predictor | None, customers: list[str]) -> dict[str, str | None]:
        """Each customer's tier before the events: from the stored answer where it is current, else
        computed."""
        if predictor is None:
            return {}
        tiers: dict[str, str | None] = {}
        missing = []
        for customer in customers:
            stored = predictor.stored_answer(customer)
            if stored is None:
                missing.append(customer)
            else:
                tiers[customer] = json.loads(stored).get("tier")
        if missing:
            tiers |= {a["customer_id"]: a.get("tier") for a in predictor.predict_ids(missing)}
        return tiers
