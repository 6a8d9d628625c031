"""Training on real data: models beat chance, behave sensibly, are registered and promoted by the rule."""

from __future__ import annotations

import math

import mlflow
import numpy as np
import pytest

from tests.conftest import TRAIN_AS_OF, TRAIN_HORIZON, copy_home
from training import registry
from training.models import SPECS

pytestmark = pytest.mark.slow


def test_every_model_is_registered_with_a_champion(trained_home):
    settings, results = trained_home
    registry.configure(settings)
    for result in results:
        assert registry.champion(result.name).version == result.version
        assert result.test_metrics[SPECS[result.name].primary_metric] > 0.6


def test_tuning_writes_one_nested_run_per_trial(trained_home):
    settings, _ = trained_home
    registry.configure(settings)
    runs = mlflow.search_runs(experiment_names=[registry.EXPERIMENT], output_format="list")
    parents = {r.info.run_id: r for r in runs if "mlflow.parentRunId" not in r.data.tags}
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    churn_parent = next(r for r in parents.values() if r.info.run_name.startswith("churn as of"))
    assert len([c for c in children if c.data.tags["mlflow.parentRunId"] == churn_parent.info.run_id]) == 2


def test_runs_record_lineage_and_data_window(trained_home):
    settings, _ = trained_home
    registry.configure(settings)
    run = mlflow.search_runs(
        experiment_names=[registry.EXPERIMENT],
        filter_string="attributes.run_name = 'churn as of 2017-10-01'",
        output_format="list",
    )[0]
    assert run.data.tags["feast.feature_service"] == "churn"
    assert run.data.params["as_of"] == "2017-10-01"
    assert len(run.data.params["data_fingerprint"]) == 16


def test_churn_probability_rises_with_days_since_last_order(trained_home):
    settings, _ = trained_home
    registry.configure(settings)
    bundle, _ = registry.load_bundle("churn")
    import pandas as pd

    latest = sorted(settings.snapshots_dir.glob("*.parquet"))[-1]
    customers = pd.read_parquet(latest).head(100)
    lapsed = customers.assign(days_since_last_order=customers["days_since_last_order"] + 30)
    assert (bundle.predict(lapsed) >= bundle.predict(customers) - 1e-12).all()
    assert np.mean(bundle.predict(lapsed)) > np.mean(bundle.predict(customers))


def test_churn_probabilities_are_probabilities(trained_home):
    settings, _ = trained_home
    registry.configure(settings)
    bundle, _ = registry.load_bundle("churn")
    import pandas as pd

    frame = pd.read_parquet(sorted(settings.snapshots_dir.glob("*.parquet"))[-1])
    p = bundle.predict(frame)
    assert ((p >= 0) & (p <= 1)).all() and 0.02 < p.mean() < 0.6


def test_a_worse_challenger_is_not_promoted(trained_home):
    from training.fit import TrainingData
    from training.promotion import decide_promotion

    settings, results = trained_home
    registry.configure(settings)
    churn = next(r for r in results if r.name == "churn")
    empty = TrainingData(None, [], [], "churn")  # not scored: the champion's recorded metric is used
    from datetime import date

    test_cutoff = date.fromisoformat(registry.champion("churn").tags["test_cutoff"])
    promoted, reason = decide_promotion(
        SPECS["churn"], churn.test_metrics["roc_auc"] - 0.01, test_cutoff, empty
    )
    assert not promoted and "does not beat" in reason
    promoted, _ = decide_promotion(SPECS["churn"], churn.test_metrics["roc_auc"] + 0.01, test_cutoff, empty)
    assert promoted


def test_a_challenger_that_beats_the_champion_but_not_a_baseline_is_not_promoted(trained_home):
    from datetime import date

    from training.fit import TrainingData
    from training.promotion import decide_promotion

    settings, results = trained_home
    registry.configure(settings)
    better = next(r for r in results if r.name == "churn").test_metrics["roc_auc"] + 0.01
    test_cutoff = date.fromisoformat(registry.champion("churn").tags["test_cutoff"])
    empty = TrainingData(None, [], [], "churn")
    baselines = {"recency": {"roc_auc": better + 0.02}, "rfm_quintiles": {"roc_auc": better - 0.1}}
    promoted, reason = decide_promotion(SPECS["churn"], better, test_cutoff, empty, baselines)
    assert not promoted and "but not the recency baseline" in reason
    promoted, reason = decide_promotion(SPECS["churn"], better + 0.03, test_cutoff, empty, baselines)
    assert promoted and "and the recency baseline" in reason


def test_a_retrained_model_that_does_not_beat_the_champion_leaves_it_serving(trained_home, tmp_path):
    """The promotion rule end to end through `train`: the same data and recipe give no better model,
    so the new version is registered and the champion keeps the alias."""
    from pipelines.train import train

    settings = copy_home(trained_home[0], tmp_path / "home")
    registry.configure(settings)
    before = registry.champion("churn").version
    again = train(settings, ["churn"], TRAIN_AS_OF, TRAIN_HORIZON, trials=2)[0]
    assert not again.promoted and "does not beat champion" in again.reason
    assert again.version > before and registry.champion("churn").version == before
    first = next(r for r in trained_home[1] if r.name == "churn")
    assert again.test_metrics == first.test_metrics  # same data and settings: the same model, exactly


def test_promote_and_rollback_move_the_champion(trained_home, tmp_path):
    from pipelines.train import train

    settings = copy_home(trained_home[0], tmp_path / "home")
    registry.configure(settings)
    before = registry.champion("customer_value").version
    again = train(settings, ["customer_value"], TRAIN_AS_OF, TRAIN_HORIZON, trials=0)[0]
    registry.promote("customer_value", again.version)
    registry.promote("customer_value", again.version)  # promoting the champion again changes nothing
    assert registry.champion("customer_value").version == again.version
    assert registry.rollback("customer_value") == before
    assert registry.champion("customer_value").version == before


def test_household_attributes_are_never_given_as_reasons_unless_asked(trained_home):
    import pandas as pd

    from features.catalog import FEATURES_BY_NAME
    from training.reasons import reasons

    settings, _ = trained_home
    registry.configure(settings)
    bundle, _ = registry.load_bundle("customer_value")
    frame = pd.read_parquet(sorted(settings.snapshots_dir.glob("*.parquet"))[-1])
    matrix = bundle.matrix(frame)
    household = {n for n in bundle.feature_names if FEATURES_BY_NAME[n].view == "household"}
    everything = len(bundle.feature_names)
    shown = {r["feature"] for row in reasons(bundle, matrix, top=everything) for r in row}
    assert household and not shown & household
    asked = {
        r["feature"]
        for row in reasons(bundle, matrix, top=everything, excluded_views=frozenset())
        for r in row
    }
    assert asked & household


def test_the_model_artifact_shows_a_typical_customer_not_a_real_one(trained_home):
    import json

    import pandas as pd

    settings, _ = trained_home
    registry.configure(settings)
    info = registry.champion("churn")
    folder = registry.model_dir("churn", info.version)
    example = json.loads((folder / "input_example.json").read_text())
    rows = example.get("data") or example.get("inputs")
    assert len(rows) == 1
    shown = pd.Series(rows[0], index=example["columns"], dtype=float)
    numeric = [
        c for c in shown.index if c in ("spend_365d", "orders_365d", "days_since_last_order", "tenure_days")
    ]
    snapshot = pd.read_parquet(sorted(settings.snapshots_dir.glob("*.parquet"))[-1], columns=numeric)
    assert not (snapshot[numeric] == shown[numeric]).all(axis=1).any()  # no real customer has exactly these


def test_a_champion_is_an_mlflow_logged_model_with_its_training_data_and_card(trained_home):
    settings, _ = trained_home
    registry.configure(settings)
    client = mlflow.MlflowClient()
    version = client.get_model_version("churn", str(registry.champion("churn").version))
    logged = client.get_logged_model(version.source.removeprefix("models:/"))
    assert logged.source_run_id == version.run_id and logged.name == "model"
    assert "Test cutoff" in version.description or "test" in version.description.lower()
    assert "churn probability" in client.get_registered_model("churn").description
    run = client.get_run(version.run_id)
    assert run.data.tags["mlflow.note.content"] == version.description
    inputs = {i.dataset.name: i.tags[0].value for i in run.inputs.dataset_inputs}
    assert inputs == {
        "churn train examples (Feast feature service churn)": "training",
        "churn test examples (Feast feature service churn)": "evaluation",
    }
    assert run.data.tags["feast.feature_views"]  # written by Feast's MLflow integration


def test_the_experiment_opens_in_mlflows_model_training_view(trained_home):
    registry.configure(trained_home[0])
    experiment = mlflow.get_experiment_by_name(registry.EXPERIMENT)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_reasons_read_in_units_with_the_size_of_each_push(trained_home):
    import re

    import pandas as pd

    from training.reasons import reasons

    settings, _ = trained_home
    registry.configure(settings)
    bundle, _ = registry.load_bundle("churn")
    frame = pd.read_parquet(sorted(settings.snapshots_dir.glob("*.parquet"))[-1]).head(50)
    matrix = bundle.matrix(frame)
    predicted, contributions = bundle.predict_and_explain(matrix)
    explained = reasons(bundle, matrix, top=3, contributions=contributions)
    for row, items in enumerate(explained):
        for reason in items:
            assert re.search(
                r"(raises|lowers) the churn probability by (less than 1 point|1 point|([2-9]|[1-9]\d+) points)$",
                reason["text"],
            )
            assert not re.search(r"\d\.\d{3,}", reason["text"])  # no 17-digit numbers
            assert (reason["size"] > 0) == (reason["effect"] == "raises")
            assert abs(reason["size"]) <= max(predicted[row], 1 - predicted[row]) + 1e-9
    days = [r for items in explained for r in items if r["feature"] == "days_since_last_order"]
    assert days and all(re.search(r"is \d[\d,]* days?:", r["text"]) for r in days)


def test_reason_details_are_the_reasons_as_json_and_their_sentences_joined(trained_home):
    import json

    import pandas as pd

    from training.reasons import reason_details, reasons

    settings, _ = trained_home
    registry.configure(settings)
    frame = pd.read_parquet(sorted(settings.snapshots_dir.glob("*.parquet"))[-1])
    for name in ("churn", "customer_value"):
        bundle, _ = registry.load_bundle(name)
        matrix = bundle.matrix(frame)
        _, contributions = bundle.predict_and_explain(matrix)
        sentences, details = reason_details(bundle, matrix, 3, contributions)
        explained = reasons(bundle, matrix, 3, contributions)
        assert [json.loads(text) for text in details] == explained
        assert sentences == [" | ".join(reason["text"] for reason in row) for row in explained]


def test_the_value_model_carries_an_80_percent_interval_measured_on_the_test_cutoff(trained_home):
    settings, results = trained_home
    value = next(r for r in results if r.name == "customer_value")
    assert 0.6 <= value.test_metrics["interval_coverage"] <= 0.97  # 250 households: a rough check
    registry.configure(settings)
    bundle, _ = registry.load_bundle("customer_value")
    assert bundle.interval is not None and bundle.interval.margin >= 0
    churn, _ = registry.load_bundle("churn")
    assert churn.interval is None


def test_a_value_model_told_to_keep_its_level_anchor_keeps_it_and_the_classifiers_have_none(trained_home):
    """The anchor and the factor it gave the test cutoff are logged with the run."""
    registry.configure(trained_home[0])
    value, info = registry.load_bundle("customer_value")
    assert value.level_anchor > 0
    assert registry.load_bundle("churn")[0].level_anchor is None
    assert registry.load_bundle("growth_potential")[0].level_anchor is None
    run = mlflow.MlflowClient().get_run(info.run_id)
    assert run.data.params["level_anchor_mode"] == "keep" and run.data.params["level_anchor_kept"] == "True"
    assert float(run.data.params["level_anchor"]) > 0 and run.data.metrics["test_level_factor"] > 0


def test_by_default_the_value_model_keeps_its_anchor_only_if_it_brought_the_test_total_nearer(baseline_home):
    """`auto`: the deployed model is anchored exactly when the anchored test total was nearer the
    actual one (as a ratio), and its test figures are of the level it deploys."""
    settings, results = baseline_home
    registry.configure(settings)
    value, info = registry.load_bundle("customer_value", results["customer_value"].version)
    run = mlflow.MlflowClient().get_run(info.run_id)
    params, measured = run.data.params, run.data.metrics
    raw, anchored = measured["test_total_ratio_raw"], measured["test_total_ratio_anchored"]
    nearer = abs(math.log(anchored)) < abs(math.log(raw))
    assert params["level_anchor_mode"] == "auto" and params["level_anchor_kept"] == str(nearer)
    assert (value.level_anchor is not None) == nearer
    deployed_level = anchored if nearer else raw
    assert results["customer_value"].test_metrics["predicted_total_ratio"] == pytest.approx(deployed_level)
