"""The promotion gate for a first model: one that loses to its best baseline is registered, not
promoted, and that baseline is stored with it for the service to answer from."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from tests.conftest import TRAIN_HORIZON
from training import registry
from training.baselines import btyd_summary, churn_baselines
from training.fallback import Fallback

pytestmark = pytest.mark.slow


def test_a_first_model_that_loses_to_a_baseline_is_registered_but_not_promoted(baseline_home):
    settings, results = baseline_home
    churn = results["churn"]
    best = churn.baseline_metrics["btyd_p_no_order"]["roc_auc"]
    assert churn.test_metrics["roc_auc"] < best  # the slice under `LOSING_CHURN`: a real, untuned loss
    assert not churn.promoted
    assert churn.reason == (
        f"no champion yet, and roc_auc {churn.test_metrics['roc_auc']:.4f} does not beat the "
        f"btyd_p_no_order baseline ({best:.4f}, {best - churn.test_metrics['roc_auc']:.4f} better)"
    )
    registry.configure(settings)
    assert registry.champion("churn") is None
    assert [v.version for v in registry.versions("churn")] == [churn.version]
    tags = registry.run_tags(registry.versions("churn")[0].run_id)
    assert tags["promoted"] == "False" and tags["promotion_reason"] == churn.reason


def test_a_first_model_that_beats_every_baseline_is_promoted(baseline_home):
    settings, results = baseline_home
    registry.configure(settings)
    for name in ("customer_value", "growth_potential"):
        result = results[name]
        assert result.promoted and "beats the" in result.reason, result.reason
        assert registry.champion(name).version == result.version


def test_the_baseline_that_answers_is_stored_with_the_version(baseline_home):
    settings, results = baseline_home
    registry.configure(settings)
    fallback, version = registry.load_fallback("churn")
    assert version.version == results["churn"].version
    assert version.tags[registry.FALLBACK_TAG] == fallback.baseline == "btyd_p_no_order"
    assert fallback.horizon_days == TRAIN_HORIZON
    assert Fallback.from_json(fallback.to_json()) == fallback
    assert registry.load_fallback("growth_potential") is None  # no baseline gives a growth probability


def test_the_stored_baseline_answers_as_training_scored_it(baseline_home):
    """The run's test cutoff, recomputed from the feature snapshot as training's baselines do it:
    the stored parameters give each customer the same P(no order) training evaluated."""
    settings, _ = baseline_home
    registry.configure(settings)
    fallback, version = registry.load_fallback("churn")
    cutoff = date.fromisoformat(version.tags["test_cutoff"])
    features = settings.feature_snapshots.read(cutoff)
    trained = churn_baselines(features, TRAIN_HORIZON)["btyd_p_no_order"]
    np.testing.assert_allclose(fallback.predict(features), trained, rtol=1e-12)


def test_the_btyd_summary_of_the_features_describes_each_customers_orders(baseline_home):
    settings, _ = baseline_home
    registry.configure(settings)
    cutoff = date.fromisoformat(registry.versions("churn")[0].tags["test_cutoff"])
    features = settings.feature_snapshots.read(cutoff)
    summary = btyd_summary(features)
    one_order = features["orders_lifetime"] == 1
    assert (summary.loc[one_order, ["frequency", "recency"]] == 0).all().all()
    assert (summary["recency"] <= summary["T"]).all() and (summary["frequency"] >= 0).all()
    assert np.allclose(summary["T"] * 7, features["tenure_days"])
