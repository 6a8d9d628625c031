"""Uplift targeting: learned from a measured campaign, judged on held-out customers, used to target a launch."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd
import pytest

from features.data.store import DataStore
from features.settings import Settings
from pipelines import campaigns
from pipelines.plant_campaign import plant_campaign
from pipelines.uplift import model_name, train_uplift, uplift_scores
from training import registry

pytestmark = pytest.mark.slow
LAUNCH = date(2024, 9, 1)


@pytest.fixture(scope="module")
def planted_report(tmp_path_factory):
    """8,000 synthetic customers, a churn model as of the launch (what a real launch targets by), and a
    planted campaign: +100% order rate for at-risk customers, nothing for loyal or lost ones."""
    from features.data.synth import generate
    from pipelines.train import train

    settings = Settings.resolve(tmp_path_factory.mktemp("uplift") / "home")
    generate(DataStore(settings.data_dir), 8_000, 7, start=date(2024, 1, 1), days=365, now=datetime.now(UTC))
    churn = train(settings, ["churn"], LAUNCH, horizon_days=60, trials=0)[0]
    if not churn.promoted:  # untuned, it may lose to BG/NBD on synthetic data; staff can promote it by hand
        registry.configure(settings)
        registry.promote("churn", churn.version)
    plant_campaign(settings, LAUNCH, window_days=60, lift=1.0, seed=3)
    return settings, train_uplift(settings, "planted")


def test_the_uplift_model_finds_the_planted_effect_better_than_churn_risk_or_random_targeting(planted_report):
    """Churn risk ranks first the lost customers, whom the offer does not change."""
    _, report = planted_report
    model, churn, random = (report.targeting[m] for m in ("uplift_model", "churn_risk", "random"))
    assert model.low > random.qini and model.qini > random.high
    assert model.qini > churn.qini
    assert report.held_out > 1_000 and report.fitted_on > 2 * report.held_out


def test_the_uplift_model_is_registered_in_mlflow_with_its_figures(planted_report):
    settings, report = planted_report
    registry.configure(settings)
    versions = registry.versions(model_name("planted"))
    assert [v.version for v in versions] == [report.version]
    assert versions[0].tags["campaign"] == "planted" and versions[0].tags["outcome"] == "retained"
    assert versions[0].is_champion == report.promoted


def test_the_scores_rank_at_risk_customers_above_loyal_ones(planted_report):
    settings, report = planted_report
    if not report.promoted:
        registry.configure(settings)
        registry.promote(model_name("planted"), report.version)
    members = pd.read_parquet(
        campaigns.campaigns_dir(settings) / "planted" / LAUNCH.isoformat() / "members.parquet"
    )
    scores = pd.Series(uplift_scores(settings, "planted", members, LAUNCH), index=members.tier.to_numpy())
    assert scores.loc["at-risk"].mean() > scores.loc["loyal"].mean()
