"""`tierwise tiers report` writes the operations page from real scored snapshots, and Chromium renders it."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from datetime import date, timedelta

import pandas as pd
import pytest

from features.data.store import DataStore
from pipelines import build_features, personas, tier_reports
from pipelines.score import score
from tests.conftest import copy_home
from tests.pipelines.test_cli import tierwise

pytestmark = pytest.mark.slow
DATES = [date(2017, 11, 5), date(2017, 12, 3)]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--no-first-run",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
]


@pytest.fixture(scope="module")
def reported_home(trained_home, tmp_path_factory):
    """A copy of the trained slice with personas, scored at two dates."""
    settings = copy_home(trained_home[0], tmp_path_factory.mktemp("reported") / "home")
    build_features.build(settings, DATES)
    personas.fit(settings, DATES[0])
    for day in DATES:
        score(settings, day)
    return settings


def test_report_command_writes_the_page_in_the_home_and_prints_its_path(reported_home):
    result = tierwise("tiers", "report", "--as-of", "2017-12-03", home=reported_home.home)
    assert result.returncode == 0, result.stderr
    path = reported_home.data_dir / "reports" / "lifecycle-2017-12-03.html"
    assert f"html report: {path}" in result.stderr
    html = path.read_text()
    assert "<title>Tier operations report · lifecycle · 2017-12-03</title>" in html
    assert "previous snapshot 2017-11-05" in html and '"type":"sankey"' in html
    assert not re.search(r"<script[^>]*\bsrc=", html)


def test_report_html_option_chooses_the_file(reported_home, tmp_path):
    target = tmp_path / "ops" / "report.html"
    result = tierwise("tiers", "report", "--html", str(target), home=reported_home.home)
    assert result.returncode == 0, result.stderr
    assert f"html report: {target}" in result.stderr
    assert "2017-12-03" in target.read_text() and not target.with_name("report.html.partial").exists()


def test_the_report_tables_as_json_keep_full_precision(reported_home):
    import json

    result = tierwise("tiers", "report", "--format", "json", home=reported_home.home)
    assert result.returncode == 0, result.stderr
    tables = json.loads(result.stdout)
    assert set(tables) == {"summary", "migration", "flow_rates"}
    summary = pd.DataFrame(tables["summary"])
    assert summary.customers.sum() > 0 and summary.share.sum() == pytest.approx(1.0)


def test_the_report_piped_is_one_csv_naming_each_rows_table(reported_home):
    import csv
    import io

    result = tierwise("tiers", "report", home=reported_home.home)
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {row["table"] for row in rows} == {"summary", "migration", "flow_rates"}
    assert "…" not in result.stdout


def test_alerts_as_json_are_the_records_and_the_exit_code_still_says_whether_one_fired(reported_home):
    import json

    result = tierwise("tiers", "alerts", "--format", "json", home=reported_home.home)
    records = json.loads(result.stdout)
    assert result.returncode == (5 if records else 0)
    assert all({"severity", "rule", "message"} <= set(r) for r in records)


def test_past_spend_is_each_customers_order_total_over_the_past_horizon(reported_home):
    day, horizon = DATES[-1], 28
    spend = tier_reports.past_spend(reported_home, day, horizon)
    orders = pd.read_parquet(DataStore(reported_home.data_dir).table_dir("orders"))
    start = pd.Timestamp(day - timedelta(days=horizon), tz="UTC")
    window = orders[(orders.ordered_at >= start) & (orders.ordered_at < pd.Timestamp(day, tz="UTC"))]
    expected = window.groupby(window.customer_id.astype(str)).amount.sum()
    pd.testing.assert_series_equal(spend.sort_index(), expected.sort_index(), check_names=False)


def test_the_page_shows_each_persona_by_tier_and_its_profile(reported_home, tmp_path):
    page = tier_reports.html_report(
        reported_home, "lifecycle", DATES[-1], tmp_path / "report.html"
    ).read_text()
    snapshot = reported_home.tier_snapshots("lifecycle").read(DATES[-1])
    assert "Personas by tier" in page and "Persona profiles" in page and "What to offer, by tier" in page
    for persona, customers in snapshot.persona.value_counts().items():
        assert f"<tr><td>{persona}</td><td>{customers:,}</td>" in page


@pytest.mark.integration
def test_the_page_renders_in_headless_chromium_without_errors(reported_home, tmp_path):
    chromium = shutil.which("chromium")
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; CI must install it (.ci/run)")
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    page = tier_reports.html_report(reported_home, "lifecycle", DATES[-1], tmp_path / "report.html")
    url = page.resolve().as_uri()

    dom = _chromium(chromium, "--virtual-time-budget=5000", "--dump-dom", url)
    status = re.search(r'<div id="render-status"[^>]*>', dom.stdout).group(0)
    attributes = dict(re.findall(r'data-([a-z]+)="([^"]*)"', status))
    assert attributes["expected"] == attributes["charts"] == attributes["rendered"] == "7", status
    assert attributes["errors"] == "[]", status
    assert not re.search(r"Uncaught|CONSOLE.*(error|Error)", dom.stderr), dom.stderr

    shot = tmp_path / "report.png"
    _chromium(chromium, "--window-size=1400,3200", f"--screenshot={shot}", url)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1400, 3200) and len(data) > 50_000


def _chromium(chromium: str, *arguments: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, *arguments], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result
