"""`tierwise ui`: the three UIs answer on their ports, and SIGTERM stops them all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.service_process import free_port

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_tierwise_ui_serves_mlflow_feast_and_evidently_and_sigterm_stops_all(served_home, tmp_path: Path):
    ports = {"mlflow": free_port(), "feast": free_port(), "evidently": free_port()}
    command = [str(Path(sys.executable).parent / "tierwise"), "--home", str(served_home.home), "ui"]
    command += [f"--{name}-port={port}" for name, port in ports.items()]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        urls = {name: f"http://127.0.0.1:{port}/" for name, port in ports.items()}
        deadline = time.monotonic() + 180
        waiting = set(urls)
        while waiting and time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            waiting = {name for name in waiting if not _answers(urls[name])}
            time.sleep(1)
        assert not waiting, f"not answering: {waiting}"
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    shown = process.stdout.read().decode()
    assert all(f"http://127.0.0.1:{port}" in shown for port in ports.values())
    for port in ports.values():
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))  # free again: no server outlived `tierwise ui`


def test_with_an_mlflow_server_tierwise_ui_starts_no_mlflow_of_its_own(cj_slice_home, tmp_path: Path):
    import dataclasses

    from pipelines.cli.ui import ui_commands
    from tests.conftest import copy_home

    home = dataclasses.replace(
        copy_home(cj_slice_home, tmp_path / "home"), mlflow_uri="http://127.0.0.1:5999"
    )
    ports = {"mlflow": 5000, "feast": 8888, "evidently": 8000}
    assert set(ui_commands(home, "127.0.0.1", ports)) == {"feast", "evidently"}
    embedded = copy_home(cj_slice_home, tmp_path / "embedded")
    assert set(ui_commands(embedded, "127.0.0.1", ports)) == {"mlflow", "feast", "evidently"}
