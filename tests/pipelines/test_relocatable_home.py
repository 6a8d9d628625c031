"""A home can move: copied, moved or mounted elsewhere, it reads and writes only itself."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from features.model_table import MODEL_NAMES
from features.settings import Settings
from pipelines import build_features
from pipelines.score import score
from pipelines.train import train
from serving.predictor import Predictor
from tests.conftest import SERVE_AS_OF, TRAIN_AS_OF, TRAIN_HORIZON, copy_home
from tests.pipelines.test_cli import tierwise
from training import registry

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lived_home(cj_slice_home, tmp_path_factory) -> tuple[Path, Settings]:
    """A home trained, materialized and scored where it first lived, then moved: (its first path, now
    gone; the home where it went). Read-only: each test moves a copy of it on (`moved_home`)."""
    place = tmp_path_factory.mktemp("lived")
    original = copy_home(cj_slice_home, place / "original")
    assert not original.mlruns_dir.exists()  # MLflow records this home's path from the first run on
    train(original, list(MODEL_NAMES), TRAIN_AS_OF, TRAIN_HORIZON, trials=0)
    build_features.build(original, [SERVE_AS_OF])
    build_features.apply_and_materialize(original, SERVE_AS_OF)
    score(original, SERVE_AS_OF)
    shutil.move(original.home, place / "moved")
    assert not original.home.exists()
    return original.home, Settings.resolve(place / "moved")


@pytest.fixture
def moved_home(lived_home, tmp_path) -> Settings:
    """A private copy of the moved home, at yet another place: the first path is still gone."""
    return copy_home(lived_home[1], tmp_path / "moved")


def test_a_moved_home_scores_from_its_own_models(moved_home):
    report = score(moved_home, SERVE_AS_OF)
    assert report.customers > 0 and report.path.is_relative_to(moved_home.home)
    for name, source in report.model_sources.items():  # untuned churn loses to BG/NBD on the slice
        champion = registry.champion(name)
        assert source == (f"champion v{champion.version}" if champion else "baseline: btyd_p_no_order"), name


def test_a_moved_home_serves_from_its_own_models(moved_home):
    predictor = Predictor(moved_home)
    customer = next(iter(predictor.live.lookup.tiers))
    assert predictor.predict_ids([customer])[0]["status"] == "ok"


def test_the_score_command_in_a_moved_home_prints_nothing_to_stderr(moved_home):
    result = tierwise("score", "--as-of", str(SERVE_AS_OF), home=moved_home.home)
    assert result.returncode == 0 and result.stderr == ""


def test_a_model_trained_in_a_moved_home_writes_its_artifacts_there(lived_home, moved_home):
    result = train(moved_home, ["customer_value"], TRAIN_AS_OF, TRAIN_HORIZON, trials=0)[0]
    registry.configure(moved_home)
    run_id = next(v.run_id for v in registry.versions("customer_value") if v.version == result.version)
    assert registry.artifact_dir(run_id).is_relative_to(moved_home.home)
    assert not lived_home[0].exists()
