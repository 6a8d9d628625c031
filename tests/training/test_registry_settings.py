"""Each home has its own MLflow store, even when one process works with several homes."""

from features.settings import Settings
from training import registry


def test_a_second_home_does_not_inherit_the_first_homes_tracking_store(tmp_path):
    registry.configure(Settings.resolve(tmp_path / "first"))  # MLflow exports MLFLOW_TRACKING_URI here
    assert str(tmp_path / "second") in Settings.resolve(tmp_path / "second").tracking_uri
