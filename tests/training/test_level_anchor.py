"""The level anchor: one factor per population sets its mean value prediction from its recent spend."""

from __future__ import annotations

from datetime import UTC, date, datetime

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
import pytest

from features.data.store import DataStore
from features.data.synth import generate
from features.settings import Settings
from pipelines.train import train
from training import registry
from training.bundle import META_FILE, ModelBundle
from training.level_anchor import LevelChoice, LevelSums, level_anchor, level_factor


@pytest.fixture
def population() -> tuple[np.ndarray, np.ndarray]:
    """Raw predictions about 1.6 times what recent spend says, as on a decaying cohort."""
    rng = np.random.default_rng(3)
    spend = rng.gamma(0.8, 60.0, 2_000) * (rng.random(2_000) < 0.8)
    raw = 1.6 * (0.9 * spend + rng.gamma(1.0, 10.0, 2_000))
    return raw, spend


def test_anchored_predictions_average_the_anchor_times_the_mean_recent_spend(population):
    raw, spend = population
    anchored = raw * level_factor(0.7, raw, spend)
    assert anchored.mean() == pytest.approx(0.7 * spend.mean(), rel=1e-12)


def test_anchoring_keeps_every_customers_rank(population):
    raw, spend = population
    factor = level_factor(0.7, raw, spend)
    assert factor != 1.0
    np.testing.assert_array_equal(np.argsort(raw * factor, kind="stable"), np.argsort(raw, kind="stable"))


def test_without_an_anchor_or_a_usable_mean_predictions_stay_as_they_are(population):
    raw, spend = population
    assert level_factor(None, raw, spend) == 1.0
    assert level_factor(0.7, raw, np.zeros_like(spend)) == 1.0
    assert level_factor(0.7, np.where(np.arange(len(raw)) == 5, np.nan, raw), spend) == 1.0


def test_the_factor_of_a_population_is_the_same_from_its_parts_in_any_order(population):
    """What lets Spark sum partition by partition and still match the factor over everyone."""
    raw, spend = population
    parts = [slice(1500, None), slice(0, 7), slice(7, 1500)]
    summed = LevelSums()
    for part in parts:
        summed = summed + LevelSums.of(raw[part], spend[part])
    assert summed == LevelSums.of(raw, spend)
    assert summed.factor(0.7) == level_factor(0.7, raw, spend)


def test_the_anchor_is_label_over_recent_spend_at_the_newest_cutoff():
    stamps = pd.to_datetime(["2024-01-01", "2024-01-01", "2024-02-01", "2024-02-01"], utc=True)
    train = pd.DataFrame(
        {"event_timestamp": stamps[:3], "spend_90d": [10.0, 10.0, 40.0], "y": [50.0, 50.0, 20.0]}
    )
    valid = pd.DataFrame({"event_timestamp": stamps[3:], "spend_90d": [60.0], "y": [30.0]})
    assert level_anchor([train, valid], "y") == pytest.approx(50 / 100)
    assert level_anchor([train.assign(spend_90d=0.0), valid.assign(spend_90d=0.0)], "y") is None


def test_the_anchor_is_kept_when_it_brings_the_total_nearer_what_was_spent(population):
    raw, spend = population  # raw predictions about 1.6 times what recent spend says
    choice = LevelChoice.on(0.7, raw, spend, actual=0.75 * spend)
    assert choice.raw_ratio > 1.5 and choice.anchored_ratio == pytest.approx(0.7 / 0.75)
    assert choice.kept


def test_the_anchor_is_dropped_when_the_raw_total_was_nearer(population):
    """As on Complete Journey's holiday quarter, where spend rose instead of decaying."""
    raw, spend = population
    choice = LevelChoice.on(0.7, raw, spend, actual=raw * 1.02)
    assert choice.raw_ratio == pytest.approx(1 / 1.02) and not choice.kept


def test_a_ratio_counts_as_far_above_the_truth_as_below_it(population):
    """0.8 of the truth is nearer than 1.3 times it (|log 0.8| < |log 1.3|)."""
    raw, spend = population
    actual = raw / 1.3  # the raw total is 1.3 times the truth
    anchor = 0.8 * actual.sum() / spend.sum()  # anchored total 0.8 times the truth
    assert LevelChoice.on(anchor, raw, spend, actual).kept


def test_without_spend_to_compare_with_the_anchor_is_not_kept(population):
    raw, spend = population
    assert not LevelChoice.on(0.7, raw, spend, actual=np.zeros_like(spend)).kept


def test_a_bundle_keeps_its_anchor_and_an_older_one_loads_without(tmp_path):
    x = np.random.default_rng(0).random((50, 1))
    booster = lgb.train({"objective": "tweedie", "verbose": -1}, lgb.Dataset(x, x[:, 0] * 10), 3)
    ModelBundle("customer_value", booster, ["spend_90d"], {}, None, 28, level_anchor=0.42).save(tmp_path)
    assert ModelBundle.load(tmp_path).level_anchor == 0.42
    meta = (tmp_path / META_FILE).read_text().replace('"level_anchor": 0.42', '"unrelated": 1')
    (tmp_path / META_FILE).write_text(meta)
    assert ModelBundle.load(tmp_path).level_anchor is None


@pytest.mark.slow
def test_on_a_decaying_cohort_the_anchored_value_total_is_nearer_the_truth_out_of_time(tmp_path):
    """One cohort whose order rate halves every 60 days: trees carry the earlier level forward (raw
    predicted/actual total about 1.6 at this size), the anchor brings it near 1. A thousand customers,
    monthly cutoffs, untuned: well under a minute on an idle machine."""
    settings = Settings.resolve(tmp_path / "home")
    generate(DataStore(settings.data_dir), 1_000, 7, half_life_days=60, now=datetime.now(UTC))
    result = train(settings, ["customer_value"], date(2024, 10, 1), 60, step_days=28, register=False)[0]
    run = mlflow.search_runs(
        experiment_names=[registry.EXPERIMENT],
        filter_string="attributes.run_name = 'customer_value as of 2024-10-01'",
        output_format="list",
    )[0]
    assert run.data.params["level_anchor_kept"] == "True"
    anchored, raw = run.data.metrics["test_total_ratio_anchored"], run.data.metrics["test_total_ratio_raw"]
    assert result.test_metrics["predicted_total_ratio"] == pytest.approx(anchored, rel=1e-9)
    assert abs(anchored - 1) < abs(raw - 1)
