"""Order events in-process: a purchase updates features, predictions and tier at once, through Feast's
push source, with the batch's own feature definition; replays and the nightly import add nothing."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import serving.events
from features.data.duck import connect
from features.data.event_log import EventLog
from features.data.order_events import check_events, check_requests
from features.event_features import event_cutoff
from features.settings import Settings
from pipelines import build_features
from pipelines.import_data import fold_events, import_file
from serving.events import OrderEvents
from serving.predictor import Predictor
from tests.conftest import SERVE_AS_OF, copy_home

pytestmark = pytest.mark.slow

#: Two days after the served features: what the shop sends as it happens.
ORDERED_AT = "2017-12-05T18:05:00"
CUTOFF = SERVE_AS_OF + timedelta(days=3)


@pytest.fixture
def served(served_home: Settings, tmp_path: Path) -> Settings:
    return copy_home(served_home, tmp_path / "home")


@pytest.fixture
def predictor(served: Settings) -> Predictor:
    return Predictor(served)


@pytest.fixture
def events(served: Settings, predictor: Predictor):
    events = OrderEvents(served, lambda: predictor)
    yield events
    events.close()


@pytest.fixture(scope="module")
def product(cj_slice_dir: Path) -> str:
    return str(pd.read_parquet(cj_slice_dir / "products.parquet").product_id.iloc[0])


def in_tier(predictor: Predictor, tier: str, count: int) -> list[str]:
    found = sorted(c for c, (t, _) in predictor.live.lookup.tiers.items() if t == tier)
    assert len(found) >= count, f"the served slice has {len(found)} {tier} customers"
    return found[:count]


def basket(order_id: str, customer: str, product: str, amount: float = 3.58) -> dict:
    return {
        "order_id": order_id,
        "customer_id": customer,
        "ordered_at": ORDERED_AT,
        "lines": [{"product_id": product, "quantity": 2, "amount": amount}],
    }


def test_an_order_lifts_a_dormant_customer_at_once(events, predictor, product):
    (customer,) = in_tier(predictor, "Dormant", 1)
    before = predictor.predict_ids([customer])[0]
    receipt = events.submit([basket("web-1", customer, product)], source="test")
    after = predictor.predict_ids([customer])[0]
    assert [o.status for o in receipt.outcomes] == ["accepted"]
    assert after["features_as_of"] == CUTOFF and after["tier_source"] == "event"
    assert after["tier"] != "Dormant" and after["churn_probability"] < before["churn_probability"]
    (change,) = receipt.tier_changes
    assert (change.customer_id, change.order_id, change.from_tier, change.to_tier) == (
        customer,
        "web-1",
        "Dormant",
        after["tier"],
    )
    assert [c["to_tier"] for c in events.log.tier_changes()] == [after["tier"]]


def test_sending_the_same_events_again_changes_nothing(events, predictor, product):
    customers = in_tier(predictor, "Dormant", 2)
    sent = [basket(f"web-{i}", c, product) for i, c in enumerate(customers)]
    events.submit(sent, source="test")
    first = pd.DataFrame(predictor.predict_ids(customers))
    again = events.submit(sent, source="test")
    assert [o.status for o in again.outcomes] == ["present", "present"] and again.tier_changes == []
    pd.testing.assert_frame_equal(pd.DataFrame(predictor.predict_ids(customers)), first)
    assert events.log.counts()["logged"] == 2


def test_a_bad_event_is_refused_with_its_field_and_kept_while_the_good_one_is_applied(
    events, predictor, product
):
    (customer,) = in_tier(predictor, "Dormant", 1)
    bad = {**basket("web-bad", customer, product), "ordered_at": "31/12/2017"}
    receipt = events.submit([bad, basket("web-good", customer, product)], source="test")
    assert [(o.status, o.field) for o in receipt.outcomes] == [("refused", "ordered_at"), ("accepted", None)]
    assert events.log.quarantined()[0]["reason"] == "unparseable_timestamp"
    assert predictor.predict_ids([customer])[0]["features_as_of"] == CUTOFF


def test_requests_arriving_while_one_is_checked_are_checked_in_one_pass_and_each_gets_its_own_receipt(
    events, predictor, product, monkeypatch
):
    customers = in_tier(predictor, "Dormant", 4)
    passes: list[int] = []
    release = threading.Event()

    def first_pass_waits(con, requests, **kwargs):
        passes.append(len(requests))
        if len(passes) == 1:
            release.wait(60)
        return check_requests(con, requests, **kwargs)

    monkeypatch.setattr(serving.events, "check_requests", first_pass_waits)
    with ThreadPoolExecutor(4) as pool:
        receipts = [pool.submit(events.submit, [basket("web-0", customers[0], product)], "test")]
        until(lambda: passes == [1])
        receipts += [
            pool.submit(events.submit, [basket(f"web-{i}", customers[i], product)], "test") for i in (1, 2, 3)
        ]
        until(lambda: len(events._queued) == 3)
        release.set()
        outcomes = [[(o.index, o.status, o.order_id) for o in r.result().outcomes] for r in receipts]
    assert passes == [1, 3]
    assert outcomes == [[(0, "accepted", f"web-{i}")] for i in range(4)]
    assert {a["tier_source"] for a in predictor.predict_ids(customers)} == {"event"}


def until(condition, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_online_features_after_events_equal_the_batch_snapshot_of_the_same_instant(
    served, events, predictor, product
):
    """One definition, two executions: the features an event pushed equal the nightly build's."""
    customers = in_tier(predictor, "Dormant", 2) + sorted(predictor.live.lookup.tiers)[:3]
    events.submit([basket(f"web-{i}", c, product, 2.5 + i) for i, c in enumerate(customers)], source="test")
    batch = assert_online_equals_batch(served, predictor, customers)
    assert batch.orders_30d.gt(0).all()


def test_a_new_product_an_event_describes_counts_online_as_in_the_nightly_build(served, events, predictor):
    """An event's line may name a product the catalog lacks, with its department: breadth counts it."""
    customers = sorted(predictor.live.lookup.tiers)[3:5]
    line = {"product_id": "event-only-1", "quantity": 1, "amount": 4.0, "department": "EVENT AISLE"}
    events.submit(
        [{**basket(f"new-{i}", c, "unused"), "lines": [line]} for i, c in enumerate(customers)], source="test"
    )
    batch = assert_online_equals_batch(served, predictor, customers)
    assert batch.departments_90d.gt(0).all()


def assert_online_equals_batch(served: Settings, predictor: Predictor, customers: list[str]) -> pd.DataFrame:
    """The customers' online features equal the nightly build's at the events' cutoff; returns the latter."""
    online = predictor.live.reader.read_frame(customers).set_index("customer_id")
    fold_events(served)
    build_features.build(served, [CUTOFF])
    batch = served.feature_snapshots.read(CUTOFF).set_index("customer_id").loc[customers, online.columns]
    for name in online.columns:
        if online[name].dtype == object:
            assert online[name].tolist() == batch[name].where(batch[name].notna(), None).tolist(), name
        else:
            np.testing.assert_allclose(online[name], batch[name].astype(float), rtol=1e-9, err_msg=name)
    return batch


def test_the_nightly_import_of_orders_that_came_as_events_adds_nothing(
    served, events, predictor, product, tmp_path
):
    customers = in_tier(predictor, "Dormant", 2)
    sent = [basket(f"web-{i}", c, product) for i, c in enumerate(customers)]
    events.submit(sent, source="test")
    extract = tmp_path / "nightly.csv"
    pd.DataFrame(
        [{**{k: v for k, v in e.items() if k != "lines"}, **line} for e in sent for line in e["lines"]]
    ).to_csv(extract, index=False)
    (folded,) = fold_events(served)
    assert folded.orders_added == 2
    report = import_file(served, extract, [])
    assert (report.orders_added, report.orders_already_present) == (0, 2)
    changed = tmp_path / "changed.csv"
    pd.read_csv(extract).assign(amount=9.99).to_csv(changed, index=False)
    quarantined = import_file(served, changed, [], max_quarantine_share=1.0)
    assert quarantined.quarantined_by_reason == {"conflicts_with_existing_order": 2}


def test_events_logged_by_a_process_that_died_before_applying_them_are_applied_at_start(
    served, predictor, product
):
    (customer,) = in_tier(predictor, "Dormant", 1)
    log = EventLog(served.events_path)
    checked = check_events(
        connect(), [basket("web-1", customer, product)], now=pd.Timestamp.now("UTC"), timezone="UTC"
    )
    log.append(checked, source="test", now=pd.Timestamp.now("UTC"))
    assert predictor.predict_ids([customer])[0]["tier"] == "Dormant"
    started = OrderEvents(served, lambda: predictor)
    (change,) = started.apply_pending()
    assert change.customer_id == customer and started.log.pending() == []
    assert predictor.predict_ids([customer])[0]["features_as_of"] == CUTOFF
    started.close()


def test_the_cutoff_of_an_event_is_the_midnight_after_its_day():
    assert event_cutoff(pd.Timestamp("2017-12-05T23:59:59", tz="UTC")) == date(2017, 12, 6)


@pytest.mark.integration
def test_an_order_updates_a_redis_online_store_the_same_way(served, redis_server, product):
    settings = Settings(served.home, "redis", redis_server)
    build_features.apply_and_materialize(settings, SERVE_AS_OF)
    predictor = Predictor(settings)
    (customer,) = in_tier(predictor, "Dormant", 1)
    events = OrderEvents(settings, lambda: predictor)
    receipt = events.submit([basket("web-1", customer, product)], source="test")
    after = predictor.predict_ids([customer])[0]
    assert (after["features_as_of"], after["tier_source"]) == (CUTOFF, "event")
    assert receipt.tier_changes[0].to_tier == after["tier"] != "Dormant"
    sqlite = Predictor(served)
    assert sqlite.predict_ids([customer])[0]["features_as_of"] == SERVE_AS_OF  # the other store is untouched
    events.close()


def test_the_next_tier_snapshot_keeps_the_change_an_order_made_and_names_the_order(
    served, events, predictor, product
):
    from pipelines.score import score

    (customer,) = in_tier(predictor, "Dormant", 1)
    (change,) = events.submit([basket("web-1", customer, product)], source="test").tier_changes
    fold_events(served)
    build_features.build(served, [CUTOFF])
    score(served, CUTOFF)
    snapshot = served.tier_snapshots("lifecycle").read(CUTOFF).set_index("customer_id")
    row = snapshot.loc[customer]
    assert row.tier == change.to_tier and row.change == "upgrade"
    assert row.reason.startswith(f"order web-1 on 2017-12-05 moved Dormant → {change.to_tier} at once: ")
    assert not snapshot.drop(customer).reason.str.startswith("order ").any()


def test_an_event_imported_before_it_was_applied_is_applied_from_the_tables(served, predictor, product):
    (customer,) = in_tier(predictor, "Dormant", 1)
    log = EventLog(served.events_path)
    now = pd.Timestamp.now("UTC")
    log.append(
        check_events(connect(), [basket("web-1", customer, product)], now=now, timezone="UTC"),
        source="test",
        now=now,
    )
    fold_events(served)  # the nightly import ran while the service was down
    started = OrderEvents(served, lambda: predictor)
    (change,) = started.apply_pending()
    assert change.customer_id == customer
    assert predictor.predict_ids([customer])[0]["features_as_of"] == CUTOFF
    started.close()
