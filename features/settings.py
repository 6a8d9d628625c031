"""Where Tierwise keeps its data and stores: the one typed place for locations and defaults.

Library code never guesses paths from the working directory; the CLI and the service build a
`Settings` once (from `--home`, `TIERWISE_HOME` or the repository default) and pass it down.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from features.dated_snapshots import DatedSnapshots

REPO_ROOT = Path(__file__).resolve().parents[1]
HOME_ENV = "TIERWISE_HOME"
ONLINE_STORE_ENV = "TIERWISE_ONLINE_STORE"
REDIS_ENV = "TIERWISE_REDIS"
#: Our own variable: MLflow's `set_tracking_uri` writes MLFLOW_TRACKING_URI into the environment, so reading
#: that one back would carry one home's store into the next `Settings` of the same process.
MLFLOW_ENV = "TIERWISE_MLFLOW_URI"
ONLINE_STORES = ("sqlite", "redis")
ENGINE_ENV = "TIERWISE_ENGINE"
SPARK_MASTER_ENV = "TIERWISE_SPARK_MASTER"
#: Engines of the heavy batch steps: DuckDB embedded in the process, or Apache Spark.
ENGINES = ("duckdb", "spark")


@dataclass(frozen=True)
class Settings:
    """Locations under one home folder.

    Attributes:
        home: Root folder; `data/` and `mlruns/` live below it. Defaults to the repository itself.
        online_store: Feast online store: "sqlite" (embedded, default) or "redis".
        redis: Redis `host:port` when `online_store` is "redis".
        mlflow_uri: MLflow tracking URI; None for the embedded store in `mlruns/`.
        engine: Engine of the heavy batch steps: "duckdb" (embedded, default) or "spark".
        spark_master: Spark's master URL when `engine` is "spark" (`local[*]`: this machine's cores).
    """

    home: Path = REPO_ROOT
    online_store: str = "sqlite"
    redis: str = "127.0.0.1:6379"
    mlflow_uri: str | None = None
    engine: str = "duckdb"
    spark_master: str = "local[*]"

    def __post_init__(self) -> None:
        if self.online_store not in ONLINE_STORES:
            raise ValueError(
                f"online_store {self.online_store!r}: expected one of {', '.join(ONLINE_STORES)}"
            )
        if self.engine not in ENGINES:
            raise ValueError(f"engine {self.engine!r}: expected one of {', '.join(ENGINES)}")

    @classmethod
    def resolve(
        cls, home: Path | str | None = None, online_store: str | None = None, engine: str | None = None
    ) -> Settings:
        """Settings for an explicit home, else `TIERWISE_HOME`, else the repository; the online store
        from the argument, else `TIERWISE_ONLINE_STORE` (Redis address: `TIERWISE_REDIS`); the engine
        from the argument, else `TIERWISE_ENGINE` (Spark's master: `TIERWISE_SPARK_MASTER`)."""
        chosen = home or os.environ.get(HOME_ENV) or REPO_ROOT
        return cls(
            home=Path(chosen).expanduser().resolve(),
            online_store=online_store or os.environ.get(ONLINE_STORE_ENV, "sqlite"),
            redis=os.environ.get(REDIS_ENV, "127.0.0.1:6379"),
            mlflow_uri=os.environ.get(MLFLOW_ENV) or None,
            engine=engine or os.environ.get(ENGINE_ENV) or "duckdb",
            spark_master=os.environ.get(SPARK_MASTER_ENV) or "local[*]",
        )

    @property
    def data_dir(self) -> Path:
        """Canonical tables, quarantine and import log (see `features.data.store`)."""
        return self.home / "data"

    @property
    def events_path(self) -> Path:
        """The order event log (`features.data.event_log`)."""
        return self.data_dir / "events" / "events.db"

    @property
    def mlruns_dir(self) -> Path:
        """Embedded MLflow tracking database and artifacts."""
        return self.home / "mlruns"

    @property
    def snapshots_dir(self) -> Path:
        """Customer feature snapshots, one Parquet file per cutoff date (Feast's offline source)."""
        return self.data_dir / "features" / "customer"

    @property
    def answers_dir(self) -> Path:
        """The service's answers as scoring published them, one Parquet file per date
        (`serving.answers`; Feast's offline source of the answers view)."""
        return self.data_dir / "answers"

    @property
    def feature_snapshots(self) -> DatedSnapshots:
        """The feature snapshots as dated files (list, choose, previous, read)."""
        from features.dated_snapshots import DatedSnapshots

        return DatedSnapshots(self.snapshots_dir, "feature snapshot", "tierwise features build")

    def tier_snapshots(self, policy: str, classic: bool = False) -> DatedSnapshots:
        """One policy's tier snapshots as dated files (list, choose, previous, read)."""
        from features.dated_snapshots import DatedSnapshots

        return DatedSnapshots(
            self.tier_snapshots_dir(policy, classic),
            f"{policy} tier snapshot",
            f"tierwise score --policy {policy}",
        )

    @property
    def feature_repo_dir(self) -> Path:
        """Feast repository: `feature_store.yaml`, the registry and the SQLite online store."""
        return self.data_dir / "feature_repo"

    def tier_snapshots_dir(self, policy: str, classic: bool = False) -> Path:
        """Dated tier snapshots of one policy (`<date>.parquet`), written by `tierwise score`."""
        return self.data_dir / "tiers" / (f"{policy}-classic" if classic else policy)

    @property
    def tracking_uri(self) -> str:
        """MLflow tracking URI: `TIERWISE_MLFLOW_URI` if set, else SQLite in `mlruns/` (embedded)."""
        return self.mlflow_uri or f"sqlite:///{self.mlruns_dir / 'mlflow.db'}"

    @property
    def spark_dir(self) -> Path:
        """Spark's scratch space on this machine (shuffle spill, staged output before it is renamed)."""
        return self.data_dir / ".spark"

    @property
    def artifacts_dir(self) -> Path:
        """Where the embedded MLflow keeps run artifacts (models, plots, model cards)."""
        return self.mlruns_dir / "artifacts"
