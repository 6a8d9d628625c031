"""The one module that talks to MLflow: experiment set-up, runs and what they log, bundles, the registry
and its aliases. Training, tuning and (later) monitoring log through the functions here; a test
(`tests/test_layering.py`) fails if any other module imports `mlflow`.

Tracking is embedded by default: a SQLite database and an artifacts folder in `mlruns/` (MLflow 3
deprecates the plain file store). The URI comes from `Settings`, set once by the caller — nothing
here runs at import. Registered models carry the model's name; the alias `champion` marks the live
version, and the registered model's tag `champion_history` lists the versions that held it, so that
`rollback` can return to the previous one.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from features.errors import InputError
from features.settings import Settings
from training.bundle import ModelBundle

if TYPE_CHECKING:
    from training.fallback import Fallback
    from training.next_order import NextOrderModel
    from training.personas import PersonaModel
    from training.uplift import UpliftModel

EXPERIMENT = "tierwise"
#: Opens the experiment in MLflow's model-training view (MLflow 3 guesses GenAI for an empty one).
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}
CHAMPION = "champion"
UPLIFT_CONTROL_FILE = "control.lgb"
UPLIFT_META_FILE = "uplift.json"
PERSONAS = "personas"
PERSONAS_FILE = "personas.json"
NEXT_ORDER = "next_order"
NEXT_ORDER_FILE = "next_order.json"
HISTORY_TAG = "champion_history"
FALLBACK_FILE = "fallback.json"
#: The version tag naming the baseline stored with it (`FALLBACK_FILE` in its run).
FALLBACK_TAG = "serving_baseline"
#: Tables and columns of the embedded store that hold artifact locations (MLflow 3's SQL schema).
ARTIFACT_COLUMNS = {
    "experiments": ("artifact_location",),
    "runs": ("artifact_uri",),
    "model_versions": ("source", "storage_location"),
    "logged_models": ("artifact_location",),
}


@dataclass(frozen=True)
class _ArtifactRoot:
    """Where the embedded store's artifacts were when it was written (`stored`) and are now (`here`).

    MLflow records artifact locations as absolute `file://` URIs. A home that was copied, moved or
    mounted elsewhere still holds them under the old path; reads map that prefix to the home's own
    `mlruns/artifacts` (so a read-only mount serves), and the first run written in the new place
    rewrites the stored locations once (`_move_stored_locations`).
    """

    stored: str
    here: str
    database: Path

    def local(self, uri: str) -> str:
        return self.here + uri[len(self.stored) :] if uri.startswith(self.stored) else uri


_root: _ArtifactRoot | None = None


@dataclass(frozen=True)
class VersionInfo:
    """A registered version. `source` is what `register` takes to register the same model again."""

    name: str
    version: int
    run_id: str
    is_champion: bool
    tags: dict[str, str]
    source: str = ""


def _version(found: Any, is_champion: bool) -> VersionInfo:
    return VersionInfo(
        found.name, int(found.version), found.run_id, is_champion, dict(found.tags), found.source or ""
    )


def configure(settings: Settings) -> str:
    """Point MLflow at the home's tracking store and return the experiment id (created on first use).

    A new experiment keeps its artifacts in the home's `mlruns/artifacts`, except on a tracking server
    (an `http(s)://` URI), where it takes the server's own artifact root: with `--artifacts-destination`
    that is `mlflow-artifacts:/`, so models are uploaded to and downloaded from the server instead of
    being written into this machine's home.
    """
    import mlflow

    global _root
    settings.mlruns_dir.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    here = settings.artifacts_dir.as_uri()
    _root = None
    if experiment is None:
        location = None
        if not is_server(settings.tracking_uri):
            settings.artifacts_dir.mkdir(parents=True, exist_ok=True)
            location = here
        experiment_id = mlflow.create_experiment(EXPERIMENT, artifact_location=location, tags=EXPERIMENT_TAGS)
    else:
        experiment_id = experiment.experiment_id
        stored = experiment.artifact_location.rstrip("/")
        if settings.mlflow_uri is None and stored != here:
            _root = _ArtifactRoot(stored, here, settings.mlruns_dir / "mlflow.db")
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def is_server(tracking_uri: str) -> bool:
    """Whether `tracking_uri` names an MLflow tracking server (HTTP) rather than a database."""
    return tracking_uri.split(":", 1)[0].lower() in ("http", "https")


def _move_stored_locations(root: _ArtifactRoot) -> None:
    """Rewrite the artifact locations the embedded store recorded under the home's old path.

    MLflow has no API to change an experiment's or a run's artifact location; its SQLite schema holds
    them in the columns of `ARTIFACT_COLUMNS`, rewritten here in one transaction (idempotent: only
    values under the old prefix change). Done before a run writes, so new artifacts land in this home.
    """
    import sqlite3
    from contextlib import closing

    global _root
    with closing(sqlite3.connect(root.database)) as db, db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table, columns in ARTIFACT_COLUMNS.items():
            if table not in tables:
                continue
            for column in columns:
                db.execute(
                    f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                    f"WHERE substr({column}, 1, ?) = ?",
                    (root.here, len(root.stored) + 1, len(root.stored), root.stored),
                )
    _root = None


@contextmanager
def run(name: str, tags: Mapping[str, str] | None = None, nested: bool = False) -> Iterator[str]:
    """A tracking run (nested in the active one if asked); yields its id."""
    import mlflow

    if _root is not None:
        _move_stored_locations(_root)
    with mlflow.start_run(run_name=name, tags=dict(tags or {}), nested=nested) as active:
        yield active.info.run_id


def log_params(params: Mapping[str, Any]) -> None:
    import mlflow

    mlflow.log_params(dict(params))


def log_metrics(metrics: Mapping[str, float]) -> None:
    """Log the finite values of `metrics` (MLflow refuses NaN in some stores; a NaN says nothing)."""
    import mlflow

    finite = {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(v)}
    if finite:
        mlflow.log_metrics(finite)


def set_tags(tags: Mapping[str, Any]) -> None:
    import mlflow

    mlflow.set_tags(dict(tags))


def log_text(text: str, file_name: str) -> None:
    import mlflow

    mlflow.log_text(text, file_name)


def log_figures(figures: Mapping[str, Any]) -> None:
    """Log matplotlib figures as images of the active run (and close them)."""
    import matplotlib.pyplot as plt
    import mlflow

    for file_name, figure in figures.items():
        mlflow.log_figure(figure, file_name)
        plt.close(figure)


def log_table(frame: pd.DataFrame, file_name: str) -> None:
    import mlflow

    mlflow.log_table(frame, file_name)


def log_frame(frame: pd.DataFrame, artifact_file: str) -> None:
    """Log `frame` as a Parquet artifact of the active run (e.g. `reference/sample.parquet`)."""
    import mlflow

    folder, _, name = artifact_file.rpartition("/")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        frame.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), artifact_path=folder or None)


def load_frame(run_id: str, artifact_file: str) -> pd.DataFrame:
    """A Parquet artifact logged by `log_frame` in run `run_id`.

    Raises:
        InputError: the run has no such artifact (a model trained before it was logged).
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=f"{_run_artifacts(run_id)}/{artifact_file}", dst_path=tmp
            )
        except (MlflowException, OSError) as exc:
            raise InputError(
                f"run {run_id} has no artifact {artifact_file}: retrain the model ({exc})"
            ) from None
        return pd.read_parquet(local)


def load_run_text(run_id: str, artifact_file: str) -> str:
    """A text artifact logged by `log_text` in run `run_id`."""
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{_run_artifacts(run_id)}/{artifact_file}", dst_path=tmp
        )
        return Path(local).read_text()


def log_fallback(fallback: Fallback) -> None:
    """Log a model's servable baseline in the active run (`FALLBACK_FILE`); the version registered
    from the run names it in its tag `FALLBACK_TAG`."""
    log_text(fallback.to_json(), FALLBACK_FILE)


def load_fallback(name: str) -> tuple[Fallback, VersionInfo] | None:
    """The servable baseline stored with the newest version of `name` — what answers for the model
    while it has no champion — or None (never trained, or no baseline gives its output)."""
    from training.fallback import Fallback

    found = versions(name)
    if not found or FALLBACK_TAG not in found[0].tags:
        return None
    return Fallback.from_json(load_run_text(found[0].run_id, FALLBACK_FILE)), found[0]


def log_run_metrics(run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
    """Log finite `metrics` into an existing (finished) run, at `step` (monitoring logs its series
    against the champion's training run this way)."""
    import time

    client = _client()
    stamp = int(time.time() * 1000)
    for key, value in metrics.items():
        if value is not None and math.isfinite(value):
            client.log_metric(run_id, key, float(value), timestamp=stamp, step=step)


def set_run_tags(run_id: str, tags: Mapping[str, Any]) -> None:
    client = _client()
    for key, value in tags.items():
        client.set_tag(run_id, key, str(value))


def log_bundle(bundle: ModelBundle, input_example: pd.DataFrame) -> str:
    """Log the bundle as an MLflow 3 logged model of the active run (the LightGBM flavour plus
    `tierwise.json`).

    `input_example` rows only shape the example: the logged one is their column medians.

    Returns:
        The model's URI (`models:/<model id>`), which `register` takes.
    """
    import warnings

    import lightgbm
    import mlflow
    import numpy as np
    from mlflow.models import infer_signature

    matrix = bundle.matrix(input_example)
    with warnings.catch_warnings():  # an all-missing column has no median: it stays missing
        warnings.simplefilter("ignore", RuntimeWarning)
        typical = np.nanmedian(matrix, axis=0, keepdims=True)
    # The example a model artifact shows is a typical customer (each feature's median), never a real one.
    example = pd.DataFrame(typical, columns=bundle.feature_names)
    signature = infer_signature(example, bundle.predict_matrix(typical))
    logged = mlflow.lightgbm.log_model(
        bundle.booster,
        name="model",
        signature=signature,
        input_example=example,
        pip_requirements=[f"lightgbm=={lightgbm.__version__}"],
    )
    with tempfile.TemporaryDirectory() as tmp:
        bundle.save_meta(Path(tmp))  # `tierwise.json` beside the booster the flavour saved
        _client().log_model_artifacts(logged.model_id, tmp)
    return logged.model_uri


def log_dataset(frame: pd.DataFrame, name: str, source: Path, target: str, context: str) -> None:
    """Record a data set the active run used (its schema, digest and profile; not its rows)."""
    import warnings

    import mlflow

    with warnings.catch_warnings():
        # MLflow's own notes on a local folder as source and on integer columns in the inferred schema
        # (counts are integers here by design): for MLflow's developers, not for whoever trains.
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
        dataset = mlflow.data.from_pandas(
            frame, source=str(source), name=name, targets=target, digest=pandas_digest(frame)
        )
        mlflow.log_input(dataset, context=context)


def pandas_digest(frame: pd.DataFrame) -> str:
    """The digest MLflow computes for a DataFrame (`mlflow.data.digest_utils.compute_pandas_digest`),
    without its cost: MLflow finds the text columns by calling `type` on every cell of the whole frame
    into a frame of types (at a million customers 160 s and 1.3 GB for the training examples); only
    columns of object dtype can hold text, so only their cells are looked at, and not copied."""
    import numpy as np
    from mlflow.data.digest_utils import MAX_ROWS, get_normalized_md5_digest

    trimmed = frame.head(MAX_ROWS)
    text = [
        column
        for column in frame.columns
        if frame[column].dtype == object and all(type(value) is str for value in frame[column])
    ]
    wanted = trimmed.columns[trimmed.columns.isin(text)].union(
        trimmed.select_dtypes(include=[np.number]).columns
    )
    return get_normalized_md5_digest(
        [pd.util.hash_pandas_object(trimmed[wanted]).values, np.int64(len(frame))]
        + [str(x).encode() for x in frame.columns]
    )


def describe_run(text: str) -> None:
    """The active run's description (what the MLflow UI shows on the run's page)."""
    import mlflow

    mlflow.set_tag("mlflow.note.content", text)


def tuning_callback(metric_name: str, run_name: str) -> Any:
    """Optuna's MLflow callback: one run per trial, nested in the active run, with its parameters and
    value; `callback.track_in_mlflow()` lets the objective log more into the trial's run."""
    import mlflow
    from optuna_integration import MLflowCallback

    return MLflowCallback(
        tracking_uri=mlflow.get_tracking_uri(),
        metric_name=metric_name,
        create_experiment=False,
        mlflow_kwargs={"nested": True, "run_name": run_name},
    )


def log_uplift(model: UpliftModel) -> str:
    """Log an uplift model as an MLflow 3 logged model: the treated arm in the LightGBM flavour, the
    control arm and the feature list beside it. Returns its URI for `register`."""
    import json

    import lightgbm
    import mlflow

    logged = mlflow.lightgbm.log_model(
        model.treated, name="uplift", pip_requirements=[f"lightgbm=={lightgbm.__version__}"]
    )
    with tempfile.TemporaryDirectory() as tmp:
        model.control.save_model(str(Path(tmp) / UPLIFT_CONTROL_FILE))
        (Path(tmp) / UPLIFT_META_FILE).write_text(json.dumps({"feature_names": model.feature_names}))
        _client().log_model_artifacts(logged.model_id, tmp)
    return logged.model_uri


def load_uplift(name: str) -> tuple[UpliftModel, VersionInfo]:
    """The champion uplift model registered as `name`."""
    import json

    import lightgbm
    import mlflow

    from training.uplift import UpliftModel

    info = champion(name)
    if info is None:
        raise InputError(
            f"no uplift model {name!r} yet: run `tierwise campaigns uplift` on a measured campaign"
        )
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=_model_artifacts(name, info.version), dst_path=tmp
            )
        )
        model = UpliftModel(
            lightgbm.Booster(model_file=str(local / "model.lgb")),
            lightgbm.Booster(model_file=str(local / UPLIFT_CONTROL_FILE)),
            json.loads((local / UPLIFT_META_FILE).read_text())["feature_names"],
        )
    return model, info


def log_text_model(name: str, file_name: str, text: str, model_type: str) -> str:
    """Log a model kept as one text file (JSON numbers and names: personas, the next-order model) as an
    MLflow 3 logged model of the active run; returns its URI for `register`."""
    import mlflow

    logged = mlflow.initialize_logged_model(name=name, model_type=model_type)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / file_name).write_text(text)
        _client().log_model_artifacts(logged.model_id, tmp)
    mlflow.finalize_logged_model(logged.model_id, "READY")
    return f"models:/{logged.model_id}"


def load_text_model(name: str, file_name: str, version: int | None = None) -> tuple[str, VersionInfo] | None:
    """The text file of the champion of `name` (or `version`), or None when `name` has no champion."""
    import mlflow

    info = champion(name) if version is None else _version_info(name, version)
    if info is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=_model_artifacts(name, info.version), dst_path=tmp
        )
        return (Path(local) / file_name).read_text(), info


def log_personas(model: PersonaModel) -> str:
    """Log a persona model (`personas.json`); returns its URI for `register`."""
    import json

    return log_text_model(PERSONAS, PERSONAS_FILE, json.dumps(model.to_dict(), indent=1), "kmeans")


def load_personas(version: int | None = None) -> tuple[PersonaModel, VersionInfo] | None:
    """The champion persona model (or `version`), or None before personas were ever fitted."""
    import json

    from training.personas import PersonaModel

    found = load_text_model(PERSONAS, PERSONAS_FILE, version)
    return None if found is None else (PersonaModel.from_dict(json.loads(found[0])), found[1])


def log_next_order(model: NextOrderModel) -> str:
    """Log a next-order model (`next_order.json`: booster text, grid, calibration); returns its URI."""
    return log_text_model(NEXT_ORDER, NEXT_ORDER_FILE, model.to_json(), "lightgbm-stacked-horizons")


def load_next_order(version: int | None = None) -> tuple[NextOrderModel, VersionInfo] | None:
    """The champion next-order model (or `version`), or None before one was trained."""
    from training.next_order import NextOrderModel

    found = load_text_model(NEXT_ORDER, NEXT_ORDER_FILE, version)
    return None if found is None else (NextOrderModel.from_json(found[0]), found[1])


def register(name: str, model_uri: str, tags: dict[str, str], description: str = "") -> int:
    """Register a new version of `name` (a challenger until promoted), described by `description`.

    Through the client, not `mlflow.register_model`, which prints to stderr on every call. Takes a
    logged model (`models:/<model id>`) or, for versions logged before logged models, `runs:/<run>/model`.
    """
    from mlflow.exceptions import MlflowException

    client = _client()
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name)
    if model_uri.startswith("models:/"):
        model = client.get_logged_model(model_uri.removeprefix("models:/"))
        version = client.create_model_version(
            name,
            model_uri,
            run_id=model.source_run_id,
            tags=tags,
            description=description,
            model_id=model.model_id,
        )
    else:
        run_id, _, path = model_uri.removeprefix("runs:/").partition("/")
        source = f"{client.get_run(run_id).info.artifact_uri}/{path}" if path else model_uri
        version = client.create_model_version(name, source, run_id=run_id, tags=tags, description=description)
    return int(version.version)


def describe_model(name: str, text: str) -> None:
    """The registered model's description: what it predicts, for whoever opens the registry."""
    _client().update_registered_model(name, description=text)


def _client():
    from mlflow import MlflowClient

    return MlflowClient()


def champion(name: str) -> VersionInfo | None:
    """The version holding the `champion` alias, or None."""
    from mlflow.exceptions import MlflowException

    try:
        found = _client().get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None
    return _version(found, True)


def promote(name: str, version: int) -> None:
    """Make `version` the champion and remember the order of champions for rollback."""
    client = _client()
    history = _history(name)  # an InputError naming the model when it was never trained
    known = sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
    if version not in known:
        raise InputError(f"{name} has no version {version}; versions: {', '.join(map(str, known))}")
    if history and history[-1] == version:
        return  # already the champion: promoting again must not make rollback return to itself
    client.set_registered_model_alias(name, CHAMPION, str(version))
    client.set_registered_model_tag(name, HISTORY_TAG, ",".join(map(str, [*history, version])))


def rollback(name: str) -> int:
    """Give the champion alias back to the previous champion; returns that version."""
    history = _history(name)
    if len(history) < 2:
        raise InputError(f"{name}: no previous champion to roll back to (history: {history or 'empty'})")
    client = _client()
    previous = history[-2]
    client.set_registered_model_alias(name, CHAMPION, str(previous))
    client.set_registered_model_tag(name, HISTORY_TAG, ",".join(map(str, history[:-1])))
    return previous


def _history(name: str) -> list[int]:
    from mlflow.exceptions import MlflowException

    try:
        tags = _client().get_registered_model(name).tags
    except MlflowException as exc:
        raise InputError(
            f"no registered model {name!r}: train it first (`tierwise train --model {name}`)"
        ) from exc
    text = tags.get(HISTORY_TAG, "")
    return [int(v) for v in text.split(",") if v]


def versions(name: str) -> list[VersionInfo]:
    """All versions of a registered model, newest first (empty when it was never trained)."""
    client = _client()
    current = champion(name)
    found = client.search_model_versions(f"name = '{name}'")
    return sorted(
        (_version(v, current is not None and int(v.version) == current.version) for v in found),
        key=lambda v: -v.version,
    )


def load_bundle(name: str, version: int | None = None) -> tuple[ModelBundle, VersionInfo]:
    """Download and load a version (default: the champion)."""
    import mlflow

    info = champion(name) if version is None else _version_info(name, version)
    if info is None:
        raise InputError(f"{name} has no champion yet: run `tierwise train --model {name}`")
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=_model_artifacts(name, info.version), dst_path=tmp
        )
        return ModelBundle.load(Path(local)), info


def _model_artifacts(name: str, version: int) -> str:
    """Where a version's files are in this home: its logged model's folder, or (versions registered
    before logged models) the run folder it was registered from."""
    client = _client()
    found = client.get_model_version(name, str(version))
    # The SQL registry keeps the logged model in `source` (`models:/<model id>`), not in `model_id`.
    model_id = found.model_id or (
        found.source.removeprefix("models:/") if found.source.startswith("models:/m-") else None
    )
    if model_id:
        return _local(client.get_logged_model(model_id).artifact_location)
    return _local(found.source)


def _version_info(name: str, version: int) -> VersionInfo:
    found = _client().get_model_version(name, str(version))
    current = champion(name)
    return _version(found, bool(current and current.version == version))


def run_metrics(run_id: str) -> dict[str, Any]:
    return dict(_client().get_run(run_id).data.metrics)


def run_tags(run_id: str) -> dict[str, str]:
    return dict(_client().get_run(run_id).data.tags)


def metric_history(run_id: str, key: str) -> dict[int, float]:
    """A metric's values in a run by step (the latest value of each step)."""
    return {
        m.step: m.value for m in sorted(_client().get_metric_history(run_id, key), key=lambda m: m.timestamp)
    }


def artifact_dir(run_id: str) -> Path:
    """Where a run's artifacts are on this machine (embedded store: a folder under `mlruns/`)."""
    from urllib.parse import unquote, urlparse

    return Path(unquote(urlparse(_run_artifacts(run_id)).path))


def model_dir(name: str, version: int) -> Path:
    """Where a registered version's model files are on this machine (embedded store)."""
    from urllib.parse import unquote, urlparse

    return Path(unquote(urlparse(_model_artifacts(name, version)).path))


def _run_artifacts(run_id: str) -> str:
    """The run's artifact folder as a URI in this home (see `_ArtifactRoot`)."""
    return _local(_client().get_run(run_id).info.artifact_uri)


def _local(uri: str) -> str:
    return uri if _root is None else _root.local(uri)
