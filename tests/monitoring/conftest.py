"""A home of the full Complete Journey data with champions trained as of 2017-10-01 (92-day horizon),
so each champion's monitoring reference is its test cutoff, 2017-07-01, with 2,393 customers: above
the 1,000 rows from which Evidently's drift tests are distances (normed Wasserstein, Jensen-Shannon)."""

from __future__ import annotations

from datetime import date

import pytest

from features.settings import Settings

AS_OF = date(2017, 10, 1)
HORIZON = 92
TEST_CUTOFF = date(2017, 7, 1)


@pytest.fixture(scope="session")
def monitored_home(tmp_path_factory) -> Settings:
    """Complete Journey imported, the three models trained (default parameters) and the test cutoff scored.
    Read-only: tests that add snapshots copy it."""
    from pipelines import train
    from pipelines.import_data import import_completejourney
    from pipelines.score import score

    settings = Settings.resolve(tmp_path_factory.mktemp("monitored") / "home")
    import_completejourney(settings)
    train.train(
        settings, ["churn", "customer_value", "growth_potential"], AS_OF, HORIZON, trials=0, step_days=14
    )
    score(settings, TEST_CUTOFF)
    return settings


@pytest.fixture(scope="session")
def monitored(monitored_home: Settings, tmp_path_factory):
    """`monitor` of the test cutoff on a copy of the home: (settings, report)."""
    import shutil

    from pipelines.monitor import monitor

    target = tmp_path_factory.mktemp("monitored_copy") / "home"
    shutil.copytree(monitored_home.home, target, symlinks=True)
    settings = Settings.resolve(target)
    return settings, monitor(settings, TEST_CUTOFF)
