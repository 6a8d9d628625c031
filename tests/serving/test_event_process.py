"""Order events in a process of their own: the worker's requests are applied there for the models the
worker serves, a child that died is started again, and no child outlives its worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

from features.settings import Settings
from serving.event_process import EventProcess
from serving.predictor import Predictor
from tests.conftest import copy_home
from tests.serving.test_order_events import basket, in_tier

pytestmark = pytest.mark.slow


@pytest.fixture
def served(served_home: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A served home the child finds as the worker's does: through `TIERWISE_HOME`."""
    home = copy_home(served_home, tmp_path / "home")
    monkeypatch.setenv("TIERWISE_HOME", str(home.home))
    return home


@pytest.fixture(scope="module")
def product(cj_slice_dir: Path) -> str:
    return str(pd.read_parquet(cj_slice_dir / "products.parquet").product_id.iloc[0])


def gone(pid: int, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.1)
    return False


def test_an_order_applied_by_the_event_process_is_the_answer_the_worker_serves(served, product):
    worker = Predictor(served)
    (customer,) = in_tier(worker, "Dormant", 1)
    changes = []
    events = EventProcess(lambda: worker.live.answer_key, changes.append)
    try:
        receipt = events.submit([basket("web-1", customer, product)], source="test")
    finally:
        events.close()
    assert [o.status for o in receipt.outcomes] == ["accepted"]
    (change,) = receipt.tier_changes
    assert changes == [change] and change.from_tier == "Dormant"
    # Stored by the child under the worker's key: the worker serves it with one read.
    stored = worker.stored_answer(customer)
    assert stored is not None and b'"tier_source":"event"' in stored
    assert worker.predict_ids([customer])[0]["tier"] == change.to_tier


def test_an_event_process_that_died_is_started_again_by_the_next_request(served, product):
    worker = Predictor(served)
    customers = in_tier(worker, "Dormant", 2)
    events = EventProcess(lambda: worker.live.answer_key)
    try:
        events.ready()
        first = events.pid
        os.kill(first, signal.SIGKILL)
        assert gone(first)
        receipt = events.submit([basket("web-2", customers[1], product)], source="test")
        assert events.pid not in (None, first)
    finally:
        events.close()
    assert [o.status for o in receipt.outcomes] == ["accepted"]
    assert worker.predict_ids([customers[1]])[0]["tier_source"] == "event"


def test_the_event_process_does_not_outlive_a_killed_worker(served):
    worker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\n"
            "from serving.event_process import EventProcess\n"
            "events = EventProcess(lambda: None)\n"
            "events.ready()\n"
            "print(events.pid, flush=True)\n"
            "time.sleep(600)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    child = int(worker.stdout.readline())
    assert psutil.pid_exists(child)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert gone(child)
