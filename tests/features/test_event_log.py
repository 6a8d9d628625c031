"""The event log keeps every accepted event durably, once, and every refused one with its reason."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from features.data.duck import connect
from features.data.event_log import EventLog
from features.data.order_events import check_events

NOW = datetime(2018, 1, 5, tzinfo=UTC)


def order(order_id: str = "o1", amount: float = 12.5) -> dict:
    return {"order_id": order_id, "customer_id": "c1", "ordered_at": "2018-01-03 18:05:00", "amount": amount}


def append(log: EventLog, *bodies: object, known: dict[str, str] | None = None) -> list[str]:
    checked = check_events(connect(), list(bodies), now=NOW, timezone="UTC")
    return [o.status for o in log.append(checked, source="test", now=NOW, known_orders=known)]


def test_an_event_is_logged_once_and_sent_again_it_is_already_present(tmp_path: Path):
    log = EventLog(tmp_path / "events.db")
    assert append(log, order()) == ["accepted"]
    assert append(log, order()) == ["present"]
    assert log.counts() == {"logged": 1, "pending": 1, "unfolded": 1, "quarantined": 0}


def test_a_known_order_with_other_content_is_refused_and_kept_in_quarantine(tmp_path: Path):
    log = EventLog(tmp_path / "events.db")
    append(log, order())
    assert append(log, order(amount=99.0)) == ["refused"]
    (kept,) = log.quarantined()
    assert kept["reason"] == "conflicts_with_existing_order" and kept["field"] == "order_id"
    assert json.loads(kept["body"])["amount"] == 99.0


def test_an_order_already_imported_is_present_or_a_conflict_by_its_content(tmp_path: Path):
    log = EventLog(tmp_path / "events.db")
    (same,) = check_events(connect(), [order()], now=NOW, timezone="UTC")
    known = {"o1": same.content_hash}
    assert append(log, order(), known=known) == ["present"]
    assert append(log, order(amount=1.0), known=known) == ["refused"]
    assert log.counts()["logged"] == 0


def test_a_refused_event_is_quarantined_with_its_field_and_body(tmp_path: Path):
    log = EventLog(tmp_path / "events.db")
    assert append(log, {**order(), "ordered_at": "soon"}) == ["refused"]
    (kept,) = log.quarantined()
    assert (kept["reason"], kept["field"]) == ("unparseable_timestamp", "ordered_at")
    assert json.loads(kept["body"])["ordered_at"] == "soon"


def test_an_acknowledged_event_survives_the_process_that_logged_it_being_killed(tmp_path: Path):
    """A child appends, prints the acknowledgement and is killed at once (SIGKILL); the log has it."""
    path = tmp_path / "events.db"
    child = f"""
import os, signal
from datetime import UTC, datetime
from features.data.duck import connect
from features.data.event_log import EventLog
from features.data.order_events import check_events
from pathlib import Path
log = EventLog(Path({str(path)!r}))
now = datetime(2018, 1, 5, tzinfo=UTC)
body = {order()!r}
(outcome,) = log.append(check_events(connect(), [body], now=now, timezone="UTC"), source="test", now=now)
print(outcome.status, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
    assert done.returncode == -9 and done.stdout.strip() == "accepted"
    reopened = EventLog(path)
    assert [e.order_id for e in reopened.pending()] == ["o1"]


def test_applied_and_folded_marks_move_events_out_of_pending_and_unfolded(tmp_path: Path):
    log = EventLog(tmp_path / "events.db")
    append(log, order("o1"), order("o2"))
    first, second = log.pending()
    log.mark_applied([first.seq], NOW)
    assert [e.order_id for e in log.pending()] == ["o2"]
    log.mark_folded([first.seq, second.seq], "import-1")
    assert log.unfolded() == [] and log.counts()["pending"] == 1
