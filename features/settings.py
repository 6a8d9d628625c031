"""Where Tierwise keeps its data and stores: the one typed place for locations and defaults.

Library code never guesses paths from the working directory; the CLI and the service build a
`Settings` once (from `--home`, `TIERWISE_HOME` or the repository default) and pass it down.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
HOME_ENV = "TIERWISE_HOME"


@dataclass(frozen=True)
class Settings:
    """Locations under one home folder.

    Attributes:
        home: Root folder; `data/` and `mlruns/` live below it. Defaults to the repository itself.
    """

    home: Path = REPO_ROOT

    @classmethod
    def resolve(cls, home: Path | str | None = None) -> Settings:
        """Settings for an explicit home, else `TIERWISE_HOME`, else the repository."""
        chosen = home or os.environ.get(HOME_ENV) or REPO_ROOT
        return cls(home=Path(chosen).expanduser().resolve())

    @property
    def data_dir(self) -> Path:
        """Canonical tables, quarantine and import log (see `features.data.store`)."""
        return self.home / "data"

    @property
    def mlruns_dir(self) -> Path:
        """Embedded MLflow tracking database and artifacts."""
        return self.home / "mlruns"
