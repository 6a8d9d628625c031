"""The Feast feature repository: entity, source, feature views and one feature service per model.

As in Feast's template: entity → source (a push source over the snapshot files) → feature views
named by entity and meaning → one `FeatureService` per model, so training and serving read the same
feature list. The definitions
are built by a function because the source path belongs to the data home; they are registered with
`FeatureStore.apply` (not the `feast apply` CLI, which imports every .py file it finds).
`feature_store.yaml` is written into the home so that Feast's own CLI and UI work there too.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import yaml

from features.catalog import VIEWS, view_features
from features.files import write_text_atomically
from features.model_table import MODEL_NAMES
from features.settings import Settings

PROJECT = "tierwise"
ENTITY = "customer"
JOIN_KEY = "customer_id"
#: The push source order events write through (`features.event_features`).
PUSH_SOURCE = "customer_events"
#: The feature view of whole answers per customer (`features.online_answers`), and its features.
ANSWER_VIEW = "customer_answers"
ANSWER_FIELDS = ("answer", "answer_key")
#: Which views each model's feature service reads (all of them today; the place to narrow one).
SERVICE_VIEWS: dict[str, tuple[str, ...]] = {model: VIEWS for model in MODEL_NAMES}
#: A snapshot older than this is not joined to an entity row (Feast's point-in-time TTL).
SNAPSHOT_TTL = timedelta(days=400)


def view_name(view: str) -> str:
    return f"{ENTITY}_{view}"


def store_config(settings: Settings) -> dict:
    """The content of `feature_store.yaml`: paths anchored to the data home, never the cwd."""
    repo = settings.feature_repo_dir
    online: dict = {"type": "sqlite", "path": str(repo / "online_store.db")}
    if settings.online_store == "redis":
        online = {"type": "redis", "connection_string": settings.redis}
    return {
        "project": PROJECT,
        "provider": "local",
        "registry": {"path": str(repo / "registry.db"), "cache_ttl_seconds": 60},
        "offline_store": offline_store_config(settings),
        "online_store": online,
        "entity_key_serialization_version": 3,
        # Feast's MLflow integration: a training set read inside a run tags it with its feature
        # service, views and entity count (the lineage `feast mlflow` and the Feast UI show).
        "mlflow": {"enabled": True, "tracking_uri": settings.tracking_uri, "auto_log": True},
    }


def offline_store_config(settings: Settings) -> dict:
    """Feast's offline store for the engine: DuckDB's, or on the Spark engine Feast's Spark store
    (community-maintained, `feast.infra.offline_stores.contrib.spark_offline_store`), which joins
    training sets in the engine's own session (`features.spark_session`) and, from Feast's CLI, in
    one configured the same way."""
    if settings.engine != "spark":
        return {"type": "duckdb"}
    from features.spark_session import REQUIRED_CONF  # imports pyspark: only on the Spark engine

    return {"type": "spark", "spark_conf": {"spark.master": settings.spark_master, **REQUIRED_CONF}}


def write_store_config(settings: Settings) -> Path:
    """Write `feature_store.yaml` (atomically) and return the repository folder."""
    repo = settings.feature_repo_dir
    repo.mkdir(parents=True, exist_ok=True)
    write_text_atomically(
        yaml.safe_dump(store_config(settings), sort_keys=False), repo / "feature_store.yaml"
    )
    (repo / ".feastignore").write_text("*\n")
    return repo


def parquet_source(name: str, files: Path, description: str, engine: str = "duckdb"):
    """A Feast source over the Parquet files matching `files`, of the kind the engine's offline store
    reads: a `FileSource`, or on Spark a `SparkSource` (the same files, read by Spark)."""
    if engine == "spark":
        from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource

        return SparkSource(
            name=name,
            path=str(files),
            file_format="parquet",
            timestamp_field="event_timestamp",
            description=description,
        )
    from feast import FileSource
    from feast.data_format import ParquetFormat

    return FileSource(
        name=name,
        path=str(files),
        file_format=ParquetFormat(),
        timestamp_field="event_timestamp",
        description=description,
    )


def definitions(snapshots_dir: Path, answers_dir: Path, engine: str = "duckdb") -> list:
    """Entity, feature views and feature services over the snapshot folder, and the answers view over
    the published answers (`serving.answers`); their sources are read by `engine`'s offline store."""
    from feast import Entity, FeatureService, FeatureView, Field, PushSource, ValueType
    from feast.types import Float64, String

    customer = Entity(
        name=ENTITY, join_keys=[JOIN_KEY], value_type=ValueType.STRING, description="A customer (household)."
    )
    source = parquet_source(
        "customer_snapshots",
        snapshots_dir / "*.parquet",
        "Customer feature snapshots, one file per cutoff date.",
        engine,
    )
    # Order events push a customer's recomputed features straight to the online store
    # (`FeatureStore.push`); training and materialization read the snapshots behind it.
    events = PushSource(
        name=PUSH_SOURCE,
        batch_source=source,
        description="Features of customers recomputed after an order event.",
    )
    views = {
        view: FeatureView(
            name=view_name(view),
            entities=[customer],
            ttl=SNAPSHOT_TTL,
            schema=[
                Field(
                    name=f.name, dtype=String if f.dtype == "string" else Float64, description=f.description
                )
                for f in view_features(view)
            ],
            source=events,
            online=True,
            tags={"team": "tierwise"},
        )
        for view in VIEWS
    }
    # Whole answers, computed from the views above by the service's own code; not a model's input.
    answers = FeatureView(
        name=ANSWER_VIEW,
        entities=[customer],
        ttl=SNAPSHOT_TTL,
        schema=[
            Field(name="answer", dtype=String, description="The service's JSON answer for the customer."),
            Field(name="answer_key", dtype=String, description="What the answer was computed from."),
        ],
        source=parquet_source(
            "customer_answer_files",
            answers_dir / "*.parquet",
            "Answers published by scoring, one file per date.",
            engine,
        ),
        online=True,
        tags={"team": "tierwise"},
    )
    services = [
        FeatureService(
            name=model,
            features=[views[v] for v in SERVICE_VIEWS[model]],
            description=f"Features of the {model} model.",
        )
        for model in MODEL_NAMES
    ]
    return [customer, *views.values(), answers, *services]
