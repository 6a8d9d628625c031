"""The model table is the one place a model is named: every other list of models follows it."""

from __future__ import annotations

from features.feature_repo import SERVICE_VIEWS
from features.model_table import MODEL_NAMES, MODEL_TABLE, PREDICTION_COLUMNS
from training.models import SPECS


def test_every_model_has_one_training_spec_in_table_order():
    assert list(SPECS) == list(MODEL_NAMES)
    for entry in MODEL_TABLE:
        assert SPECS[entry.name].model is entry


def test_every_model_has_its_feast_feature_service():
    assert set(SERVICE_VIEWS) == set(MODEL_NAMES)


def test_names_outputs_and_labels_are_distinct():
    for values in (MODEL_NAMES, PREDICTION_COLUMNS, [e.label for e in MODEL_TABLE]):
        assert len(set(values)) == len(MODEL_TABLE)


def test_the_api_answers_every_prediction_column():
    from serving.schemas import Prediction

    assert set(PREDICTION_COLUMNS) <= set(Prediction.model_fields)


def test_the_command_line_offers_every_model_and_all():
    from pipelines.cli import ModelChoice, ModelName

    assert [m.value for m in ModelName] == list(MODEL_NAMES)
    assert [m.value for m in ModelChoice] == [*MODEL_NAMES, "all"]
