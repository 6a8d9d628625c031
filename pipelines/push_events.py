"""`tierwise data push`: order events from a file or a pipe, through the same path as `POST /orders`.

The events are checked, logged and applied by `serving.events.OrderEvents`, with the champion models
and the latest tiers when the home has them (then tier changes are found and logged as they are by
the service); a home without models still gets its features updated.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from features.errors import InputError
from features.settings import Settings
from serving.events import OrderEvents, Receipt

logger = logging.getLogger("tierwise.push")


@dataclass(frozen=True)
class PushedEvents:
    """A push's receipt, the source line of each event, and why tiers were not recomputed (if not)."""

    receipt: Receipt
    lines: list[int]
    without_tiers: str | None


def parse_events(text: str) -> tuple[list[object], list[int]]:
    """Events from a JSON array or JSON Lines (one event per line, blank lines skipped), with the
    line each came from. A line that is not JSON becomes its text: refused and quarantined like any
    malformed event, never dropped."""
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            events = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise InputError(f"events: not a JSON array ({exc.msg} at line {exc.lineno})") from exc
        return events, list(range(1, len(events) + 1))
    events, lines = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            events.append(line)
        lines.append(number)
    return events, lines


def push(settings: Settings, text: str, source: str) -> PushedEvents:
    """Check, log and apply the events in `text` (see `parse_events`) for the home of `settings`."""
    from serving.predictor import Predictor

    events, lines = parse_events(text)
    if not events:
        raise InputError(f"{source}: no order events")
    try:
        predictor, without = Predictor(settings), None
    except Exception as exc:  # no champions or tiers yet: features are updated, tiers are not
        predictor, without = None, f"{type(exc).__name__}: {exc}"
        logger.info("tier changes are not computed: %s", without)
    handler = OrderEvents(settings, lambda: predictor)
    try:
        receipt = handler.submit(events, source=source)
    finally:
        handler.close()
    return PushedEvents(receipt, lines, without)
