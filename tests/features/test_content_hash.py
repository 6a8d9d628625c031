"""An order's fingerprint tells a re-import from a changed order, whatever wrote it before."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pandas as pd

from features.data.duck import connect, sql_string
from features.data.event_log import EventLog
from features.data.store import DataStore
from features.event_features import EventFeatures
from features.settings import Settings
from pipelines.import_data import import_completejourney, import_file
from tests.conftest import CJ_SLICE
from tests.features.tables import read_table
from tests.features.test_event_log import append, order
from tests.features.test_import_files import SHOP_MAP, shop_lines

ORDERS_ONLY_MAP = ["order_id=receipt", "customer_id=client", "ordered_at=placed", "amount=total"]


def fingerprint_as_an_older_tierwise(settings: Settings) -> None:
    """Give every stored order a 32-digit fingerprint, as Tierwise before December 2026 wrote."""
    con = connect()
    orders = DataStore(settings.data_dir).live_version() / "orders"
    for path in orders.rglob("*.parquet"):
        rewritten = path.with_suffix(".new")
        con.execute(
            f"COPY (SELECT * REPLACE (md5(order_id) AS content_hash) FROM read_parquet({sql_string(str(path))})) "
            f"TO {sql_string(str(rewritten))} (FORMAT parquet)"
        )
        os.replace(rewritten, path)  # a new file: the hard-linked older version keeps its own


def fingerprints(settings: Settings) -> pd.Series:
    return read_table(settings, "orders").set_index("order_id")["content_hash"].sort_index()


def test_fingerprints_are_64_hex_digits(cj_slice_home: Settings):
    assert fingerprints(cj_slice_home).str.fullmatch("[0-9a-f]{64}").all()


def test_the_order_of_the_lines_in_a_file_does_not_change_an_order(home: Settings, tmp_path: Path):
    lines = shop_lines(CJ_SLICE, limit_households=10)
    first, shuffled = tmp_path / "first.csv", tmp_path / "shuffled.csv"
    lines.to_csv(first, index=False)
    lines.sample(frac=1.0, random_state=7).to_csv(shuffled, index=False)
    added = import_file(home, first, SHOP_MAP).orders_added
    again = import_file(home, shuffled, SHOP_MAP)
    assert (again.orders_added, again.orders_already_present) == (0, added)


def test_a_changed_line_makes_the_order_a_conflict(home: Settings, tmp_path: Path):
    lines = shop_lines(CJ_SLICE, limit_households=10)
    first, changed = tmp_path / "first.csv", tmp_path / "changed.csv"
    lines.to_csv(first, index=False)
    lines.assign(Menge=lambda f: f["Menge"].where(f.index != 0, f["Menge"] + 1)).to_csv(changed, index=False)
    import_file(home, first, SHOP_MAP)
    again = import_file(home, changed, SHOP_MAP)
    conflicts = again.quarantined_by_reason["conflicts_with_existing_order"]
    assert conflicts == (lines["Bon"] == lines["Bon"].iloc[0]).sum()


def test_an_older_tierwise_s_fingerprints_are_rewritten_and_a_reimport_adds_nothing(fresh_cj_home: Settings):
    today = fingerprints(fresh_cj_home)
    fingerprint_as_an_older_tierwise(fresh_cj_home)
    report = import_completejourney(fresh_cj_home, CJ_SLICE)
    assert (report.orders_added, report.orders_already_present) == (0, len(today))
    assert fingerprints(fresh_cj_home).equals(today)


def test_an_older_tierwise_s_fingerprints_of_orders_without_lines_are_rewritten_too(
    orders_only_home: Settings, tmp_path: Path
):
    today = fingerprints(orders_only_home)
    fingerprint_as_an_older_tierwise(orders_only_home)
    report = import_file(orders_only_home, tmp_path / "orders.csv", ORDERS_ONLY_MAP)
    assert (report.orders_added, report.orders_already_present) == (0, len(today))
    assert fingerprints(orders_only_home).equals(today)


def test_an_event_checks_an_older_tierwise_s_orders_by_today_s_fingerprint(fresh_cj_home: Settings):
    today = fingerprints(fresh_cj_home)
    fingerprint_as_an_older_tierwise(fresh_cj_home)
    customer = read_table(fresh_cj_home, "orders")["customer_id"].iloc[0]
    checks = EventFeatures(fresh_cj_home)
    known = checks.known_orders([customer])
    checks.close()
    assert known and all(today[order_id] == fingerprint for order_id, fingerprint in known.items())


def test_an_event_logged_with_an_older_fingerprint_is_present_when_sent_again_unchanged(tmp_path: Path):
    path = tmp_path / "events.db"
    log = EventLog(path)
    assert append(log, order()) == ["accepted"]
    with sqlite3.connect(path) as db:
        db.execute("UPDATE events SET content_hash = ?", ("0" * 32,))
    assert append(log, order()) == ["present"]
    assert append(log, order(amount=99.0)) == ["refused"]
