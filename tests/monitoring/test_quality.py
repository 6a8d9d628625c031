"""Real quality once outcomes are known: measured on the stored predictions, graded against baselines."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from features.live_data import open_live_data
from pipelines.monitor import reports_dir, workspace_dir
from tests.monitoring.conftest import HORIZON, TEST_CUTOFF

pytestmark = pytest.mark.slow


def test_production_churn_auc_of_a_matured_snapshot_equals_a_hand_computation(monitored):
    settings, report = monitored
    snapshot = settings.tier_snapshots("lifecycle").read(TEST_CUTOFF)
    orders = open_live_data(settings).execute("SELECT customer_id, ordered_at FROM orders").df()
    start, end = (
        pd.Timestamp(TEST_CUTOFF, tz="UTC"),
        pd.Timestamp(TEST_CUTOFF + timedelta(days=HORIZON), tz="UTC"),
    )
    ordered = set(orders.customer_id[(orders.ordered_at >= start) & (orders.ordered_at < end)])
    churned = np.array([customer not in ordered for customer in snapshot.customer_id], dtype=int)
    quality = report.health["churn"].quality[-1]
    assert quality.as_of == TEST_CUTOFF and quality.customers == len(snapshot)
    assert quality.positives == churned.sum()
    assert quality.metrics["roc_auc"] == pytest.approx(
        roc_auc_score(churned, snapshot.churn_probability), abs=1e-12
    )


def test_every_model_is_graded_against_its_baselines_and_training_metric(monitored):
    _, report = monitored
    for name, health in report.health.items():
        quality = health.latest_quality
        assert quality.best_baseline in quality.baselines, name
        metric = quality.primary_metric
        assert quality.lift == pytest.approx(
            quality.primary - quality.baselines[quality.best_baseline][metric]
        )
        assert quality.training_metric is not None and health.grade in ("Excellent", "Good", "Fair", "Poor")


def test_the_json_report_keeps_the_quality_series_and_every_drift_statistic(monitored):
    settings, report = monitored
    saved = json.loads((reports_dir(settings) / "churn" / f"{TEST_CUTOFF}.json").read_text())
    assert saved["grade"] == report.health["churn"].grade
    assert [q["as_of"] for q in saved["quality"]] == [TEST_CUTOFF.isoformat()]
    assert len(saved["feature_drift"]["columns"]) == len(report.health["churn"].features.columns)
    assert saved["evidently"]["metrics"]


def test_the_summary_is_logged_to_the_champions_mlflow_run(monitored):
    from training import registry

    settings, report = monitored
    registry.configure(settings)
    health = report.health["customer_value"]
    logged = registry.run_metrics(health.run_id)
    assert logged["production_normalized_gini"] == pytest.approx(health.latest_quality.primary)
    assert logged["monitor_drifted_share"] == pytest.approx(health.features.share)


def test_the_workspace_has_a_project_per_model_and_rerunning_a_date_replaces_its_runs(monitored):
    from monitoring.workspace import MonitoringWorkspace
    from pipelines.monitor import monitor

    settings, _ = monitored
    workspace = MonitoringWorkspace(workspace_dir(settings))
    projects = {
        name: workspace.project_id(name, "", "") for name in ("churn", "customer_value", "growth_potential")
    }
    before = {name: sorted(workspace.runs(project)) for name, project in projects.items()}
    assert all(len(runs) == 2 for runs in before.values())  # the drift run and one matured quality run
    monitor(settings, TEST_CUTOFF)
    after = MonitoringWorkspace(workspace_dir(settings))
    assert {name: len(after.runs(project)) for name, project in projects.items()} == {n: 2 for n in projects}


def test_the_tier_report_shows_each_models_grade_and_links_to_the_monitoring_page(monitored):
    from pipelines import tier_reports

    settings, report = monitored
    page = tier_reports.html_report(settings, "lifecycle", TEST_CUTOFF).read_text()
    assert "Model health" in page and f'href="monitoring/{TEST_CUTOFF}.html"' in page
    for name, health in report.health.items():
        assert f"{name} v{health.version}</td><td>{health.grade}</td>" in page


def test_quality_is_a_series_over_every_matured_snapshot_in_the_report_workspace_and_mlflow(
    monitored_home, tmp_path
):
    import shutil
    from datetime import date

    from features.settings import Settings
    from monitoring.workspace import MonitoringWorkspace
    from pipelines import build_features
    from pipelines.monitor import monitor
    from pipelines.score import score
    from training import registry

    later = date(2017, 8, 1)
    home = tmp_path / "home"
    shutil.copytree(monitored_home.home, home, symlinks=True)
    settings = Settings.resolve(home)
    build_features.build(settings, [later])
    score(settings, later)
    report = monitor(settings, later)
    churn = report.health["churn"]
    assert [q.as_of for q in churn.quality] == [TEST_CUTOFF, later]
    assert all(q.customers > 2_000 and 0.5 < q.primary < 1 for q in churn.quality)
    page = (reports_dir(settings) / f"{later}.html").read_text()
    assert page.count("once outcomes are known") == 3  # one quality chart per model
    workspace = MonitoringWorkspace(workspace_dir(settings))
    assert len(workspace.runs(workspace.project_id("churn", "", ""))) == 3  # one drift run, two quality runs
    registry.configure(settings)
    history = registry.metric_history(churn.run_id, "production_roc_auc")
    assert sorted(history) == [20170701, 20170801]
    assert history[20170801] == pytest.approx(churn.quality[-1].primary)
