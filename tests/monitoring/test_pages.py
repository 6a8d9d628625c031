"""What ML-ops open: the overview and Evidently's pages render offline; Evidently's UI serves the workspace."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from pipelines.monitor import reports_dir
from tests.monitoring.conftest import TEST_CUTOFF
from tests.pipelines.test_tiers_report_html import CHROMIUM_FLAGS
from tests.service_process import free_port

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _chromium() -> str:
    chromium = shutil.which("chromium")
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; CI must install it (.ci/run)")
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    return chromium


def _dump(chromium: str, url: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, "--virtual-time-budget=8000", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def test_the_overview_renders_every_chart_offline_without_script_errors(monitored):
    settings, report = monitored
    page = reports_dir(settings) / f"{TEST_CUTOFF}.html"
    html = page.read_text()
    assert not re.search(r"<script[^>]*\bsrc=", html)
    dom = _dump(_chromium(), page.resolve().as_uri())
    status = re.search(r'<div id="render-status"[^>]*>', dom.stdout).group(0)
    attributes = dict(re.findall(r'data-([a-z]+)="([^"]*)"', status))
    assert attributes["expected"] == attributes["charts"] == attributes["rendered"] == "3", status
    assert attributes["errors"] == "[]", status


def test_evidentlys_drift_page_opens_offline_without_script_errors(monitored):
    settings, _ = monitored
    page = reports_dir(settings) / "churn" / f"{TEST_CUTOFF}.html"
    assert not re.search(r"<script[^>]*\bsrc=\"?https?:", page.read_text())
    dom = _dump(_chromium(), page.resolve().as_uri())
    assert not re.search(r"Uncaught|CONSOLE.*(error|Error)", dom.stderr), dom.stderr[-2000:]
    assert "days_since_last_order" in dom.stdout


def test_monitor_ui_serves_the_projects_and_stops_cleanly_on_sigterm(monitored, tmp_path):
    settings, _ = monitored
    port = free_port()
    log = (tmp_path / "ui.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipelines",
            "--home",
            str(settings.home),
            "monitor",
            "ui",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline, projects = time.monotonic() + 120, None
        while time.monotonic() < deadline and projects is None:
            assert process.poll() is None, (tmp_path / "ui.log").read_text()[-3000:]
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/api/projects", timeout=2)
                projects = response.json() if response.status_code == 200 else None
            except httpx.HTTPError:
                time.sleep(1)
        assert projects is not None, (tmp_path / "ui.log").read_text()[-3000:]
        names = {p["name"] for p in projects}
        assert {"tierwise churn", "tierwise customer_value", "tierwise growth_potential"} <= names
        process.send_signal(signal.SIGTERM)  # to the `tierwise` process itself, as a service manager would
        assert process.wait(timeout=15) is not None
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # the port is free again: nothing was left running
