"""A model without a champion is answered by the baseline its first version lost to, online and in
the batch, and every answer says so; once a version beats the baseline, it answers instead."""

from __future__ import annotations

import dataclasses
import json
from datetime import date

import numpy as np
import pandas as pd
import pytest

from serving.predictor import Predictor
from serving.schemas import Prediction
from tests.conftest import SERVE_AS_OF, TRAIN_AS_OF, TRAIN_HORIZON, WINNING_CHURN, copy_home
from training import registry
from training.baselines import churn_baselines

pytestmark = pytest.mark.slow
SOURCE = "baseline: btyd_p_no_order"


@pytest.fixture(scope="module")
def predictor(baseline_home) -> Predictor:
    return Predictor(baseline_home[0])


@pytest.fixture(scope="module")
def batch(baseline_home) -> pd.DataFrame:
    return pd.read_parquet(baseline_home[0].tier_snapshots_dir("lifecycle") / f"{SERVE_AS_OF}.parquet")


def test_without_a_champion_churn_is_answered_by_its_baseline_and_says_so(predictor, batch, baseline_home):
    registry.configure(baseline_home[0])
    answers = predictor.predict_ids(batch.customer_id.head(40).tolist())
    value = registry.champion("customer_value").version
    for answer in answers:
        assert answer["model_sources"]["churn"] == SOURCE
        assert answer["model_sources"]["customer_value"] == f"champion v{value}"
        assert "churn" not in answer["model_versions"]
        assert answer["reasons"]["churn"] == [] and len(answer["reasons"]["customer_value"]) == 3
        assert 0 <= answer["churn_probability"] <= 1
        Prediction.model_validate(answer)  # the API's contract holds
    assert len({a["churn_probability"] for a in answers}) > 10  # a score per customer, not a constant


def test_the_batch_answers_from_the_same_baseline(predictor, batch):
    sample = batch.sample(60, random_state=5)
    answers = pd.DataFrame(predictor.predict_ids(sample.customer_id.tolist()))
    for column in ["churn_probability", "expected_value", "growth_potential"]:
        np.testing.assert_allclose(answers[column].astype(float), sample[column], rtol=1e-9)
    assert answers.tier.tolist() == sample.tier.tolist()
    assert set(batch.churn_source) == {SOURCE} and "churn_version" not in batch
    assert batch.churn_reasons.isna().all()


def test_the_baseline_answer_equals_the_training_side_baseline_for_the_same_customer(
    predictor, baseline_home
):
    """A customer's features at the run's test cutoff, sent as a vector, get the P(no order)
    training's baseline gave the same customer there."""
    settings, _ = baseline_home
    cutoff = date.fromisoformat(registry.versions("churn")[0].tags["test_cutoff"])
    features = settings.feature_snapshots.read(cutoff)
    trained = churn_baselines(features, TRAIN_HORIZON)["btyd_p_no_order"]
    for row in [0, 17, 101]:
        vector = {
            k: (None if pd.isna(v) else v)
            for k, v in features.iloc[row].items()
            if k not in ("customer_id", "event_timestamp")
        }
        answer = predictor.score_features([(features.customer_id.iloc[row], vector)])[0]
        assert answer["churn_probability"] == pytest.approx(trained[row], rel=1e-12)
        assert answer["model_sources"]["churn"] == SOURCE


def test_a_model_without_a_baseline_for_its_output_answers_null(baseline_home, batch):
    """Growth potential has no baseline that gives a probability: without a champion it is null."""
    own = Predictor(baseline_home[0])
    live = own.live.champions
    without_growth = dataclasses.replace(
        live,
        bundles={k: v for k, v in live.bundles.items() if k != "growth_potential"},
        versions={k: v for k, v in live.versions.items() if k != "growth_potential"},
        unanswered=("growth_potential",),
    )
    own.live = dataclasses.replace(own.live, champions=without_growth)
    answer = own.predict_ids([batch[batch.growth_potential.notna()].customer_id.iloc[0]])[0]
    assert answer["growth_potential"] is None and answer["reasons"]["growth_potential"] == []
    assert answer["model_sources"]["growth_potential"] == "none"
    assert answer["model_sources"]["churn"] == SOURCE and answer["churn_probability"] is not None


def test_a_version_that_beats_the_baseline_becomes_champion_and_answers(baseline_home, tmp_path):
    from pipelines import train

    home = copy_home(baseline_home[0], tmp_path / "home")
    served = Predictor(home)
    registry.configure(home)
    better = train.train(home, ["churn"], TRAIN_AS_OF, TRAIN_HORIZON, **WINNING_CHURN)[0]
    best = better.baseline_metrics["btyd_p_no_order"]["roc_auc"]
    assert better.promoted and better.test_metrics["roc_auc"] > best
    assert f"beats the btyd_p_no_order baseline ({best:.4f})" in better.reason
    assert registry.champion("churn").version == better.version
    assert served.is_stale()
    assert served.reload().changed
    customer = next(iter(served.live.lookup.tiers))
    answer = served.predict_ids([customer])[0]
    assert answer["model_sources"]["churn"] == f"champion v{better.version}"
    assert answer["model_versions"]["churn"] == better.version and len(answer["reasons"]["churn"]) == 3


def test_the_tier_report_and_a_campaign_record_name_the_baseline_that_answers_churn(baseline_home, tmp_path):
    from pipelines import campaigns, tier_reports
    from tests.pipelines.test_campaigns import CAMPAIGN

    settings = copy_home(baseline_home[0], tmp_path / "home")
    page = tier_reports.html_report(settings, "lifecycle", SERVE_AS_OF).read_text()
    assert f"churn {SOURCE}" in page
    (settings.home / "campaigns").mkdir()
    (settings.home / "campaigns" / "reactivate.yaml").write_text(CAMPAIGN)
    launch = campaigns.launch(settings, "reactivate", SERVE_AS_OF)
    record = json.loads((launch.folder / "launch.json").read_text())
    assert record["model_sources"]["churn"] == SOURCE and "churn" not in record["model_versions"]


def test_a_planted_campaign_records_churn_risk_from_the_baseline_that_answers_churn(baseline_home, tmp_path):
    from pipelines import campaigns
    from pipelines.plant_campaign import plant_campaign

    settings = copy_home(baseline_home[0], tmp_path / "home")
    plant_campaign(settings, SERVE_AS_OF, window_days=28, seed=1)
    folder = campaigns.campaigns_dir(settings) / "planted" / SERVE_AS_OF.isoformat()
    assert json.loads((folder / "truth.json").read_text())["churn_probability"] == f"churn {SOURCE}"
