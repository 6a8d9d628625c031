"""`TIERWISE_MLFLOW_URI` at an MLflow tracking server whose backend store is PostgreSQL and whose
artifacts it proxies to a folder (`--artifacts-destination`): train, register, promote and load the
champion back through the server, against Debian's PostgreSQL started here and stopped afterwards."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from features.settings import MLFLOW_ENV
from tests.conftest import TRAIN_AS_OF, TRAIN_HORIZON, copy_home
from tests.service_process import PostgresServer, ServiceProcess, free_port, postgres_bin_dir
from training import registry
from training.bundle import META_FILE, ModelBundle
from training.run import REFERENCE_ARTIFACT

pytestmark = pytest.mark.integration

DATABASE = "mlflow"


@pytest.fixture
def postgres():
    """A throwaway PostgreSQL cluster from Debian's binaries, stopped and deleted after the test."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed; CI must install it (.ci/run)")
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    server = PostgresServer(bin_dir)
    yield server
    server.stop()


@pytest.fixture
def mlflow_server(postgres: PostgresServer, tmp_path: Path):
    """`mlflow server` on the PostgreSQL database `mlflow`, proxying artifacts to a folder; yields the
    server and that folder, and stops the server after the test (before PostgreSQL stops)."""
    artifacts = tmp_path / "mlflow-artifacts"
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--backend-store-uri",
        postgres.create_database(DATABASE),
        "--artifacts-destination",
        str(artifacts),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    server = ServiceProcess.start(command, port, tmp_path / "mlflow-server.log")
    try:
        server.wait("/health", timeout=180)
        yield server, artifacts
    finally:
        server.stop()


def test_models_train_register_promote_and_load_through_an_mlflow_server_on_postgresql(
    postgres, mlflow_server, cj_slice_home, tmp_path, monkeypatch
):
    from pipelines.train import train

    server, artifacts = mlflow_server
    monkeypatch.setenv(MLFLOW_ENV, server.url)
    settings = copy_home(cj_slice_home, tmp_path / "home")  # `Settings.resolve` reads TIERWISE_MLFLOW_URI
    assert settings.tracking_uri == server.url

    [trained] = train(settings, ["churn"], TRAIN_AS_OF, TRAIN_HORIZON)
    assert trained.version == 1
    registry.configure(settings)
    if not trained.promoted:  # it lost to its baseline on these 250 households (the promotion gate)
        registry.promote("churn", trained.version)  # as staff may, by hand
    first = registry.champion("churn")
    again = registry.register("churn", first.source, {"copy_of": "1"})  # the same model as version 2
    registry.promote("churn", again)
    bundle, info = registry.load_bundle("churn")  # downloaded through the server
    assert (info.version, info.is_champion, info.run_id) == (again, True, first.run_id)

    # Training logged the deployed model's own predictions on a sample of test examples (computed in
    # the training process, before any upload): the champion from the server predicts the same.
    reference = registry.load_frame(first.run_id, REFERENCE_ARTIFACT)
    assert len(reference) > 100
    np.testing.assert_array_equal(bundle.predict(reference), reference["prediction"].to_numpy())

    # The artifacts went through the server into its folder, none into the home.
    experiments = postgres.query(
        DATABASE, "SELECT artifact_location FROM experiments WHERE name = 'tierwise'"
    )
    assert experiments == [("mlflow-artifacts:/1",)]
    [meta] = list(artifacts.rglob(META_FILE))
    np.testing.assert_array_equal(ModelBundle.load(meta.parent).predict(reference), bundle.predict(reference))
    assert not [path for path in settings.mlruns_dir.rglob("*") if path.is_file()]

    # Runs, versions and the alias are rows in PostgreSQL.
    runs = dict(postgres.query(DATABASE, "SELECT run_uuid, status FROM runs"))
    assert runs[first.run_id] == "FINISHED"
    versions = postgres.query(
        DATABASE, "SELECT version, run_id FROM model_versions WHERE name = 'churn' ORDER BY version"
    )
    assert versions == [(1, first.run_id), (again, first.run_id)]
    aliases = postgres.query(
        DATABASE, "SELECT alias, version FROM registered_model_aliases WHERE name = 'churn'"
    )
    assert aliases == [(registry.CHAMPION, again)]
