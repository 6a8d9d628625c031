"""The closed loop: a drifted home raises alerts, the alerted models are retrained on the newest data,
and a challenger takes over only if it beats the champion and the best baseline on the newest matured
cutoff; the outcome is in MLflow and in the monitoring report."""

from __future__ import annotations

import dataclasses
import json
import shutil
from datetime import timedelta

import pytest
from rich.console import Console

from features.settings import Settings
from pipelines.full_run import retrain_alerted
from pipelines.monitor import monitor, reports_dir
from tests.monitoring.conftest import AS_OF, HORIZON, MONEY, STEP_DAYS, TEST_CUTOFF
from training import registry

pytestmark = pytest.mark.slow
DRIFTED_DAY = TEST_CUTOFF + timedelta(days=1)


@pytest.fixture(scope="module")
def loop(price_rise_home: Settings, cj_slice_home: Settings, tmp_path_factory):
    """Three rounds of monitor → retrain (default parameters) on a copy of the drifted home.

    Between the first and the second round an operator promotes by hand a customer-value model
    trained on a pilot shop's data (the 250-household slice, registered in the same MLflow registry,
    as two homes sharing a tracking server would): a stale champion a retrain should replace.

    Returns (settings, first report, rounds); a round is (outcomes, champion versions after it).
    """
    from pipelines.train import train

    target = tmp_path_factory.mktemp("loop") / "home"
    shutil.copytree(price_rise_home.home, target, symlinks=True)
    settings = Settings.resolve(target)
    pilot_home = tmp_path_factory.mktemp("pilot") / "home"
    shutil.copytree(cj_slice_home.home, pilot_home, symlinks=True)
    pilot = dataclasses.replace(Settings.resolve(pilot_home), mlflow_uri=settings.tracking_uri)
    quiet = Console(quiet=True)
    first = monitor(settings, DRIFTED_DAY)
    rounds = []
    for number in range(3):
        registry.configure(settings)
        outcomes = retrain_alerted(settings, monitor(settings, DRIFTED_DAY), quiet, trials=0)
        rounds.append((outcomes, {o["model"]: registry.champion(o["model"]).version for o in outcomes}))
        if number == 0:
            stale = train(pilot, ["customer_value"], AS_OF, HORIZON, trials=0, step_days=STEP_DAYS)[0]
            registry.configure(settings)
            registry.promote("customer_value", stale.version)
    return settings, first, rounds


def test_a_price_rise_alerts_the_value_model_on_its_money_features_and_the_alerted_are_retrained(loop):
    """Which other models alert depends on whether a money feature is among their top five (the
    growth model's changed when two habit features were added); the value model's always is."""
    _, first, [(outcomes, _), *_] = loop
    alerted = {a["model"] for a in first.alerts}
    value = first.health["customer_value"]
    assert "customer_value" in alerted and set(value.top_drifted(first.thresholds)) & MONEY
    assert {o["model"] for o in outcomes} == alerted


def test_a_retrain_repeats_its_champions_recipe_on_the_newest_data(loop):
    """Same horizon and days between training cutoffs as the champion, as of the newest data."""
    settings, _, [(outcomes, _), *_] = loop
    registry.configure(settings)
    for outcome in outcomes:
        info = next(v for v in registry.versions(outcome["model"]) if v.version == outcome["version"])
        assert info.tags["step_days"] == str(STEP_DAYS) and info.tags["horizon_days"] == str(HORIZON)
        assert info.tags["as_of"] > str(AS_OF)


def test_every_decision_follows_the_rule(loop):
    _, _, rounds = loop
    for outcomes, champions in rounds:
        for outcome in outcomes:
            beats = "beats champion" in outcome["reason"] and "but not the" not in outcome["reason"]
            assert outcome["promoted"] == beats, outcome
            assert (champions[outcome["model"]] == outcome["version"]) == outcome["promoted"], outcome


def test_a_challenger_that_beats_the_champion_and_the_baselines_becomes_champion(loop):
    _, _, [_, (outcomes, champions), _] = loop
    value = next(o for o in outcomes if o["model"] == "customer_value")
    assert value["promoted"] and champions["customer_value"] == value["version"], value
    assert "beats champion" in value["reason"] and "baseline" in value["reason"]


def test_a_challenger_that_does_not_win_is_registered_and_the_champion_stays(loop):
    _, _, [_, (_, before), (outcomes, after)] = loop
    assert outcomes and not any(o["promoted"] for o in outcomes)  # the same data and recipe cannot do better
    assert after == before
    for outcome in outcomes:
        assert "does not beat champion" in outcome["reason"]
        assert registry.versions(outcome["model"])[0].version == outcome["version"]  # registered


def test_each_outcome_is_recorded_in_mlflow_and_in_the_monitoring_report(loop):
    settings, _, [_, (outcomes, _), _] = loop
    registry.configure(settings)
    for outcome in outcomes:
        info = next(v for v in registry.versions(outcome["model"]) if v.version == outcome["version"])
        tags = registry.run_tags(info.run_id)
        assert tags["promoted"] == str(outcome["promoted"]) and tags["promotion_reason"] == outcome["reason"]
    report = monitor(settings, DRIFTED_DAY, retraining=outcomes)
    model = outcomes[0]["model"]
    saved = json.loads((reports_dir(settings) / model / f"{DRIFTED_DAY}.json").read_text())
    assert saved["retraining"] == [o for o in outcomes if o["model"] == model]
    assert "Retraining after the alerts" in report.overview.read_text()
