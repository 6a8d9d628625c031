"""Training the next-order model: judged against BG/NBD, registered, promoted only when it wins."""

from __future__ import annotations

import pytest

from pipelines.next_order import train_next_order
from tests.conftest import TRAIN_AS_OF, TRAIN_HORIZON_NEXT_ORDER, copy_home
from training import registry

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(trained_home, tmp_path_factory):
    settings = copy_home(trained_home[0], tmp_path_factory.mktemp("next_order") / "home")
    return settings, train_next_order(settings, TRAIN_AS_OF, TRAIN_HORIZON_NEXT_ORDER)


def test_it_becomes_champion_only_when_it_ranks_better_than_bgnbd(trained):
    settings, report = trained
    mine, theirs = report.test_metrics["auc_30d"], report.baseline_metrics["auc_30d"]
    assert report.promoted == (mine > theirs)
    registry.configure(settings)
    champion = registry.champion(registry.NEXT_ORDER)
    assert (champion is not None and champion.version == report.version) == report.promoted
    assert registry.versions(registry.NEXT_ORDER)[0].version == report.version
    assert f"{mine:.3f}" in report.reason and f"{theirs:.3f}" in report.reason


def test_the_run_records_the_model_and_bgnbd_on_the_same_test_customers(trained):
    settings, report = trained
    registry.configure(settings)
    run = registry.versions(registry.NEXT_ORDER)[0].run_id
    metrics = registry.run_metrics(run)
    assert metrics["test_auc_30d"] == pytest.approx(report.test_metrics["auc_30d"])
    assert metrics["bgnbd_auc_30d"] == pytest.approx(report.baseline_metrics["auc_30d"])
    assert registry.run_tags(run)["promotion_reason"] == report.reason


def test_a_customer_without_an_order_in_the_horizon_is_the_one_the_date_is_missing_for_most(trained):
    _, report = trained
    # censoring: customers who ordered get a date far more often than those who did not
    assert report.test_metrics["no_date_share"] < 1 - report.test_metrics["date_for_silent_share"]
