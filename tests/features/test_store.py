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
from features.data import write_stages
from features.data.store import DataStore, StoreBusyError
from features.settings import Settings
from pipelines.import_data import import_file
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


def _stopped(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"


@pytest.mark.slow
@pytest.mark.parametrize("stage", write_stages.STAGES)
def test_an_import_killed_at_each_write_stage_leaves_one_whole_version_live(
    fresh_cj_home: Settings, tmp_path: Path, stage: str
):
    """The real command, stopped at a named stage (so it was provably still running there) and killed:
    the home holds the old import whole or, once the switch is done, the new one whole."""
    new_orders = tmp_path / "orders.csv"
    new_orders.write_text(
        "customer_id,order_id,ordered_at,amount\nc1,killed-1,2017-06-01 10:00:00,3.0\n"
        "c2,killed-2,2017-06-02 11:00:00,4.5\n"
    )
    before = snapshot(fresh_cj_home)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipelines",
            "--home",
            str(fresh_cj_home.home),
            "data",
            "import",
            str(new_orders),
        ],
        env={**os.environ, write_stages.STOP_AT_ENV: stage},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not _stopped(process.pid):
        assert process.poll() is None, f"the import ended (exit {process.returncode}) before {stage}"
        assert time.monotonic() < deadline, f"the import never reached {stage}"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert_consistent(fresh_cj_home)
    after = snapshot(fresh_cj_home)
    if stage == "live_switched":
        assert after[0] == before[0] + 2 and after[3] == before[3] + 1
    else:
        assert after == before
    again = import_file(fresh_cj_home, new_orders, [])  # the next import cleans up and completes
    assert again.orders_added == (0 if stage == "live_switched" else 2)
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
