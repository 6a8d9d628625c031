"""A trained registry on the real Complete Journey slice, shared by the training tests (trained once)."""

from __future__ import annotations

import shutil
from datetime import date

import pytest

from features.settings import Settings
from pipelines import train

AS_OF = date(2017, 10, 1)
HORIZON = 28  # short enough that 250 households give enough churners per cutoff


@pytest.fixture(scope="session")
def trained_home(cj_slice_home: Settings, tmp_path_factory) -> tuple[Settings, list]:
    """The slice with all three models trained as of 2017-10-01 (2 Optuna trials each)."""
    target = tmp_path_factory.mktemp("trained") / "home"
    shutil.copytree(cj_slice_home.home, target, symlinks=True)
    settings = Settings.resolve(target)
    results = train.train(settings, ["churn", "customer_value", "growth_potential"], AS_OF, HORIZON, trials=2)
    return settings, results
