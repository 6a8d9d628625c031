"""`tierwise run --retrain-every 14d`: which champions are due, counted on the data's dates."""

from __future__ import annotations

from datetime import timedelta

import pytest

from features.errors import InputError
from pipelines.cli.app import parse_period
from pipelines.full_run import Recipe, champion_recipes, models_due, models_without_champion
from tests.conftest import TRAIN_AS_OF, TRAIN_HORIZON


@pytest.mark.parametrize(("text", "days"), [("14d", 14), ("2w", 14), (" 30D ", 30)])
def test_a_period_is_days_or_weeks(text, days):
    assert parse_period(text, "--retrain-every") == timedelta(days=days)


@pytest.mark.parametrize("text", ["14", "two weeks", "0d", "-3d", "1m"])
def test_anything_else_is_refused_naming_the_option(text):
    with pytest.raises(InputError, match="--retrain-every"):
        parse_period(text, "--retrain-every")


@pytest.mark.slow
def test_champions_are_due_once_their_training_data_is_that_old(trained_home):
    settings, _ = trained_home
    every = timedelta(days=14)
    assert models_due(settings, every, TRAIN_AS_OF + timedelta(days=13)) == {}
    due = models_due(settings, every, TRAIN_AS_OF + timedelta(days=14))
    assert due == {"churn": TRAIN_AS_OF, "customer_value": TRAIN_AS_OF, "growth_potential": TRAIN_AS_OF}


@pytest.mark.slow
def test_a_due_champion_is_retrained_on_its_own_horizon_and_steps(trained_home):
    recipes = champion_recipes(trained_home[0], ["churn", "customer_value"])
    assert recipes == {Recipe(TRAIN_HORIZON, 7): ["churn", "customer_value"]}


@pytest.mark.slow
def test_a_model_that_lost_to_its_baseline_is_retrained_only_when_due(baseline_home):
    settings, _ = baseline_home
    every = timedelta(days=14)
    assert models_without_champion(settings, None, TRAIN_AS_OF + timedelta(days=60)) == []
    assert models_without_champion(settings, every, TRAIN_AS_OF + timedelta(days=13)) == []
    assert models_without_champion(settings, every, TRAIN_AS_OF + timedelta(days=14)) == ["churn"]


@pytest.mark.slow
def test_a_home_never_trained_trains_every_model(fresh_cj_home):
    assert models_without_champion(fresh_cj_home, None, TRAIN_AS_OF) == [
        "churn",
        "customer_value",
        "growth_potential",
    ]
