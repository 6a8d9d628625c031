"""One writer per home: a job waits for the home's writer lock, then says the home is busy (exit 4)."""

from __future__ import annotations

import os
import subprocess
import sys

from features.data.store import DataStore
from features.settings import Settings


def test_a_job_on_a_home_another_process_writes_waits_then_exits_4_saying_so(tmp_path):
    home = Settings.resolve(tmp_path / "home")
    store = DataStore(home.data_dir)
    with store.writing():
        result = subprocess.run(
            [sys.executable, "-m", "pipelines", "--home", str(home.home), "score"],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "TIERWISE_LOCK_WAIT": "1"},
        )
    assert result.returncode == 4, result.stderr
    assert "being written by another process (waited 1 s)" in result.stderr


def test_a_job_calling_a_job_holds_the_lock_once_and_releases_it(tmp_path):
    store = DataStore(tmp_path / "data")
    with store.writing(), store.writing():
        pass
    probe = (
        "from features.data.store import DataStore; import sys; DataStore(sys.argv[1]).writing().__enter__()"
    )
    taken = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path / "data")], capture_output=True, timeout=60
    )
    assert taken.returncode == 0, taken.stderr
