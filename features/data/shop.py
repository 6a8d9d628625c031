"""What the data says about the shop itself: its local time zone, recorded with the orders.

A grocery's dayparts and weekends are the shop's, not UTC's: an order at 20:00 in Shanghai is an
evening order. The first import records the zone its `--timezone` named in `shop.json` of the store
version (so it travels with the data, in the same atomic switch); later imports use it and refuse
another; the derived tables compute the hour of day and the weekend in it.
"""

from __future__ import annotations

import json
from pathlib import Path

from features.errors import InputError
from features.files import write_text_atomically

SHOP_FILE = "shop.json"
DEFAULT_TIME_ZONE = "UTC"


def shop_time_zone(version: Path | None) -> str:
    """The zone recorded in `version` (UTC when none is recorded)."""
    path = None if version is None else version / SHOP_FILE
    if path is None or not path.exists():
        return DEFAULT_TIME_ZONE
    return json.loads(path.read_text())["timezone"]


def recorded_time_zone(version: Path | None) -> str | None:
    path = None if version is None else version / SHOP_FILE
    return json.loads(path.read_text())["timezone"] if path is not None and path.exists() else None


def import_time_zone(live: Path | None, given: str | None) -> str:
    """The zone an import reads offset-less timestamps in: the one given, else the recorded one.

    Raises:
        InputError: `given` differs from the zone the home's orders were recorded in.
    """
    recorded = recorded_time_zone(live)
    if given is not None and recorded is not None and given != recorded:
        raise InputError(
            f"--timezone {given}: this home's orders are in {recorded} (recorded at its first import); "
            f"pass --timezone {recorded} or leave it out"
        )
    return given or recorded or DEFAULT_TIME_ZONE


def record_time_zone(version: Path, zone: str) -> None:
    write_text_atomically(json.dumps({"timezone": zone}) + "\n", version / SHOP_FILE)
