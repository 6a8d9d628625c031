"""Order events over HTTP against the real service (`tierwise serve`): a purchase changes the answer at
once and for good; bad events are refused and kept; a killed service loses and repeats nothing."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pandas as pd
import psutil
import pytest

from features.data.event_log import EventLog
from features.event_features import EventFeatures
from features.settings import Settings
from tests.conftest import SERVE_AS_OF, copy_home
from tests.service_process import ServiceProcess

pytestmark = [pytest.mark.slow, pytest.mark.integration]
START_TIMEOUT = 240
ADMIN_TOKEN = "orders-test-admin-token-0123456789"
CUTOFF = SERVE_AS_OF + timedelta(days=3)


def start(home: Path, log: Path) -> ServiceProcess:
    env = {**os.environ, "BENTOML_HOME": str(log.parent / "bentoml"), "TIERWISE_API_TOKEN": ADMIN_TOKEN}
    service = ServiceProcess.tierwise(home, log, env)
    service.wait("/readyz", START_TIMEOUT)
    return service


def client(service: ServiceProcess) -> httpx.Client:
    return httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=120)


@pytest.fixture
def served(served_home: Settings, tmp_path: Path) -> Settings:
    return copy_home(served_home, tmp_path / "home")


@pytest.fixture
def service(served: Settings, tmp_path: Path) -> Iterator[ServiceProcess]:
    running = start(served.home, tmp_path / "service.log")
    yield running
    if running.process.poll() is None:
        running.stop()


@pytest.fixture(scope="module")
def snapshot(served_home: Settings) -> pd.DataFrame:
    return pd.read_parquet(served_home.tier_snapshots_dir("lifecycle") / f"{SERVE_AS_OF}.parquet")


@pytest.fixture(scope="module")
def product(cj_slice_dir: Path) -> str:
    return str(pd.read_parquet(cj_slice_dir / "products.parquet").product_id.iloc[0])


def dead(pid: int) -> bool:
    """Whether process `pid` is gone (or a zombie waiting to be reaped)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def basket(order_id: str, customer: str, product: str) -> dict:
    return {
        "order_id": order_id,
        "customer_id": customer,
        "ordered_at": "2017-12-05T18:05:00",
        "lines": [{"product_id": product, "quantity": 2, "amount": 3.58}],
    }


def test_an_order_lifts_a_dormant_customer_at_once_and_the_change_survives_a_restart(
    served, service, snapshot, product, tmp_path
):
    customer = snapshot[snapshot.tier == "Dormant"].customer_id.iloc[0]
    with client(service) as api:
        answered = api.post("/orders", json={"orders": [basket("web-1", customer, product)]})
        assert answered.status_code == 200, answered.text
        (change,) = answered.json()["tier_changes"]
        assert change["from_tier"] == "Dormant" and change["customer_id"] == customer
        now = api.post("/predict", json={"customer_id": customer}).json()
        assert (now["tier"], now["tier_source"]) == (change["to_tier"], "event")
        assert now["features_as_of"] == CUTOFF.isoformat()
        metrics = api.get("/metrics").text
        assert 'tierwise_tier_changes_total{from_tier="Dormant"' in metrics
        assert 'tierwise_order_events_total{status="accepted"} 1.0' in metrics
        replay = api.post("/orders", json={"orders": [basket("web-1", customer, product)]})
        assert (
            replay.status_code == 200 and replay.json()["present"] == 1 and not replay.json()["tier_changes"]
        )
    service.stop()
    # One JSON line per change in the service's log, for a CRM to follow.
    logged = [line for line in service.log.read_text().splitlines() if '"event": "tier_change"' in line]
    assert len(logged) == 1 and f'"customer_id": "{customer}"' in logged[0]
    again = start(served.home, tmp_path / "again.log")
    try:
        with client(again) as api:
            assert api.post("/predict", json={"customer_id": customer}).json()["tier"] == change["to_tier"]
    finally:
        again.stop()


def test_a_bad_event_is_answered_422_naming_its_field_and_kept_in_quarantine(
    served, service, snapshot, product
):
    customer = snapshot.customer_id.iloc[0]
    bad = {**basket("web-1", customer, product), "ordered_at": "31/12/2017"}
    with client(service) as api:
        answered = api.post("/orders", json={"orders": [basket("web-0", customer, product), bad]})
        conflict = api.post(
            "/orders", json={"orders": [{**basket("web-0", customer, product), "lines": bad["lines"] * 2}]}
        )
    assert answered.status_code == 422
    body = answered.json()
    assert body["field"] == "orders[1].ordered_at" and body["code"] == "invalid_order"
    assert [r["status"] for r in body["results"]] == ["accepted", "refused"]
    assert conflict.status_code == 409 and conflict.json()["code"] == "order_conflict"
    kept = EventLog(served.events_path).quarantined()
    assert [k["reason"] for k in kept] == ["unparseable_timestamp", "conflicts_with_existing_order"]


def test_orders_need_a_token_with_the_admin_scope(service, snapshot, product):
    answer = httpx.post(
        service.url + "/orders", json={"orders": [basket("x", snapshot.customer_id.iloc[0], product)]}
    )
    assert answer.status_code in (401, 403)


def test_a_killed_service_loses_no_acknowledged_event_and_applies_none_twice(
    served, service, snapshot, product, tmp_path
):
    """Events arrive one by one; the service is killed (SIGKILL) while they do. Every event it
    acknowledged is in the log and, after a restart, applied exactly once: each customer's order
    count is their count without events plus one."""
    customers = snapshot.customer_id.tolist()[:40]
    acknowledged: list[str] = []
    stop = threading.Event()

    def send() -> None:
        with client(service) as api:
            for i, customer in enumerate(customers):
                if stop.is_set():
                    return
                try:
                    if (
                        api.post(
                            "/orders", json={"orders": [basket(f"web-{i}", customer, product)]}
                        ).status_code
                        == 200
                    ):
                        acknowledged.append(customer)
                except httpx.HTTPError:
                    return

    sender = threading.Thread(target=send)
    sender.start()
    while len(acknowledged) < 5 and sender.is_alive():
        threading.Event().wait(0.05)
    # The workers are in sessions of their own (circus starts them with setsid): kill each of them.
    processes = [
        service.process.pid,
        *(c.pid for c in psutil.Process(service.process.pid).children(recursive=True)),
    ]
    for pid in processes:
        os.kill(pid, signal.SIGKILL)
    stop.set()
    sender.join(timeout=120)
    service.process.wait(timeout=30)
    # SIGKILL takes effect asynchronously: give each process up to 30 s to be gone before checking.
    deadline = time.monotonic() + 30
    while not all(map(dead, processes)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(map(dead, processes))
    logged = {e.customer_id for e in EventLog(served.events_path).unfolded()}
    assert set(acknowledged) <= logged and len(acknowledged) >= 5
    restarted = start(served.home, tmp_path / "restarted.log")
    restarted.stop()
    assert EventLog(served.events_path).pending() == []
    from serving.predictor import Predictor

    online = Predictor(served).live.reader.read_frame(sorted(logged)).set_index("customer_id")
    without = EventFeatures(served).compute(sorted(logged), [], CUTOFF).set_index("customer_id")
    assert (online.orders_365d == without.loc[online.index, "orders_365d"] + 1).all()
