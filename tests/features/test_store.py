"""Writes are atomic: a failed or killed import leaves the previous data readable and unchanged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import features.data.importer as importer
from features.data.store import DataStore, StoreBusyError
from features.settings import Settings
from pipelines.import_data import import_completejourney, import_file
from tests.features.tables import scalar


def snapshot(settings: Settings) -> tuple:
    return tuple(
        scalar(settings, "SELECT count(*) FROM {t}", table)
        for table in ("orders", "order_lines", "customers", "imports")
    )


def assert_consistent(settings: Settings) -> None:
    """The live version is a whole import: the log's orders add up to the orders table, lines to lines."""
    orders = scalar(settings, "SELECT count(*) FROM {t}", "orders")
    logged = scalar(settings, "SELECT sum(orders_added) FROM {t}", "imports")
    assert orders == logged, "the orders do not match the import log: a half-written state is live"
    lines = scalar(settings, "SELECT sum(lines) FROM {t}", "orders")
    assert scalar(settings, "SELECT count(*) FROM {t}", "order_lines") == lines


def test_failure_while_writing_keeps_the_previous_version(fresh_cj_home: Settings, tmp_path, monkeypatch):
    before, live = snapshot(fresh_cj_home), DataStore(fresh_cj_home.data_dir).live_version()
    new_orders = tmp_path / "orders.csv"
    new_orders.write_text("customer_id,order_id,ordered_at,amount\nc1,new-1,2017-06-01 10:00:00,3.0\n")

    def fail(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(importer, "_replace_quarantine", fail)  # orders are written by then
    with pytest.raises(OSError, match="simulated"):
        import_file(fresh_cj_home, new_orders, [])
    store = DataStore(fresh_cj_home.data_dir)
    assert store.live_version() == live
    assert snapshot(fresh_cj_home) == before
    assert sorted(p.name for p in store.versions_dir.iterdir()) == [live.name]


@pytest.mark.slow
def test_a_killed_import_leaves_the_previous_data_readable(fresh_cj_home: Settings, cj_slice_dir):
    """Kill the real command (a full Complete Journey import, ~10 s) at moments spread over its run:
    whatever it was doing, the old state stays intact and readable."""
    assert_consistent(fresh_cj_home)
    for delay in (1.0, 3.0, 5.0, 6.5, 8.0):
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pipelines",
                "--home",
                str(fresh_cj_home.home),
                "data",
                "import",
                "completejourney",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        assert_consistent(fresh_cj_home)
    report = import_completejourney(fresh_cj_home, cj_slice_dir)
    assert report.rows_read == report.rows_accepted + report.rows_quarantined
    assert len(list(DataStore(fresh_cj_home.data_dir).versions_dir.iterdir())) <= 2


def test_a_second_writer_is_refused_while_one_is_writing(tmp_path: Path):
    store = DataStore(tmp_path)
    with store.transaction(), pytest.raises(StoreBusyError), store.transaction():
        pass


def test_an_import_that_another_import_overtakes_adds_nothing_twice(tmp_path):
    """The second writer arrives while the first validates: it must find the home busy (exit 4), never
    read the same old version and store the same orders again."""
    import subprocess
    import sys

    import pandas as pd

    from pipelines.import_data import import_file

    path = tmp_path / "orders.csv"
    pd.DataFrame(
        {
            "order_id": ["o1", "o2", "o3"],
            "customer_id": ["a", "b", "c"],
            "ordered_at": ["2024-01-02", "2024-01-03", "2024-01-04"],
            "amount": [1.0, 2.0, 3.0],
        }
    ).to_csv(path, index=False)
    settings = Settings.resolve(tmp_path / "home")
    overtaking: list[subprocess.CompletedProcess] = []

    def on_step(text: str) -> None:
        if text == "validating rows" and not overtaking:
            command = [
                sys.executable,
                "-m",
                "pipelines",
                "--home",
                str(settings.home),
                "data",
                "import",
                str(path),
            ]
            overtaking.append(subprocess.run(command, capture_output=True, text=True, timeout=120))

    report = import_file(settings, path, [], on_step=on_step)
    orders = pd.read_parquet(DataStore(settings.data_dir).live_version() / "orders")
    assert sorted(orders.order_id) == ["o1", "o2", "o3"] and report.orders_added == 3
    assert overtaking[0].returncode == 4 and "busy" in overtaking[0].stderr
