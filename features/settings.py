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
TRAIN_SAMPLE_ENV = "TIERWISE_TRAIN_SAMPLE"
TRAIN_SAMPLE_SEED_ENV = "TIERWISE_TRAIN_SAMPLE_SEED"


def parse_share(text: str, variable: str) -> float | None:
    """A share written `0.1` or `10%`, as a fraction; None for an empty text or a share of 1 (all).

    Raises:
        ValueError: not a number, or outside (0, 1], naming `variable`.
    """
    text = text.strip()
    if not text:
        return None
    try:
        share = float(text.removesuffix("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise ValueError(f"{variable}={text!r}: expected a share such as 0.1 or 10%") from None
    if not 0 < share <= 1:
        raise ValueError(f"{variable}={text!r}: the share must be above 0 and at most 1 (100%)")
    return None if share == 1 else share


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
        train_sample: Share of customers a training run learns from at each cutoff (0.1 = 10%), or
            None for all (the default). The same customers are in at every cutoff: those whose hash
            of `train_sample_seed` and id falls below the share (`training.labels.CustomerSample`).
            The test cutoff is sampled too, so memory stays bounded at any scale. For data too
            large to train on in full (10M customers); its measured cost in accuracy is in the
            README.
        train_sample_seed: Which sample: the same seed and data give the same customers.
    """

    home: Path = REPO_ROOT
    online_store: str = "sqlite"
    redis: str = "127.0.0.1:6379"
    mlflow_uri: str | None = None
    engine: str = "duckdb"
    spark_master: str = "local[*]"
    train_sample: float | None = None
    train_sample_seed: int = 0

    def __post_init__(self) -> None:
        if self.online_store not in ONLINE_STORES:
            raise ValueError(
                f"online_store {self.online_store!r}: expected one of {', '.join(ONLINE_STORES)}"
            )
        if self.engine not in ENGINES:
            raise ValueError(f"engine {self.engine!r}: expected one of {', '.join(ENGINES)}")
        if self.train_sample is not None and not 0 < self.train_sample <= 1:
            raise ValueError(f"train_sample {self.train_sample!r}: expected a share above 0 and at most 1")

    @classmethod
    def resolve(
        cls, home: Path | str | None = None, online_store: str | None = None, engine: str | None = None
    ) -> Settings:
        """Settings for an explicit home, else `TIERWISE_HOME`, else the repository; the online store
        from the argument, else `TIERWISE_ONLINE_STORE` (Redis address: `TIERWISE_REDIS`); the engine
        from the argument, else `TIERWISE_ENGINE` (Spark's master: `TIERWISE_SPARK_MASTER`); the
        training sample from `TIERWISE_TRAIN_SAMPLE` (`0.1` or `10%`; unset: every customer) and its
        seed from `TIERWISE_TRAIN_SAMPLE_SEED` (default 0)."""
        chosen = home or os.environ.get(HOME_ENV) or REPO_ROOT
        return cls(
            home=Path(chosen).expanduser().resolve(),
            online_store=online_store or os.environ.get(ONLINE_STORE_ENV, "sqlite"),
            redis=os.environ.get(REDIS_ENV, "127.0.0.1:6379"),
            mlflow_uri=os.environ.get(MLFLOW_ENV) or None,
            engine=engine or os.environ.get(ENGINE_ENV) or "duckdb",
            spark_master=os.environ.get(SPARK_MASTER_ENV) or "local[*]",
            train_sample=parse_share(os.environ.get(TRAIN_SAMPLE_ENV, ""), TRAIN_SAMPLE_ENV),
            train_sample_seed=_integer(os.environ.get(TRAIN_SAMPLE_SEED_ENV, "0"), TRAIN_SAMPLE_SEED_ENV),
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


def _integer(text: str, variable: str) -> int:
    try:
        return int(text.strip() or "0")
    except ValueError:
        raise ValueError(f"{variable}={text!r}: expected a whole number") from None
