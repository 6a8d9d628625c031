"""A home of the full Complete Journey data with champions trained as of 2017-10-01 (92-day horizon),
so each champion's monitoring reference is its test cutoff, 2017-07-01, with 2,393 customers: above
the 1,000 rows from which Evidently's drift tests are distances (normed Wasserstein, Jensen-Shannon)."""

from __future__ import annotations

import shutil
from datetime import date, timedelta

import numpy as np
import pytest

from features.catalog import FEATURES
from features.settings import Settings

AS_OF = date(2017, 10, 1)
HORIZON = 92
TEST_CUTOFF = date(2017, 7, 1)
STEP_DAYS = 14  # fortnightly training cutoffs: half the work of weekly ones


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
        settings,
        ["churn", "customer_value", "growth_potential"],
        AS_OF,
        HORIZON,
        trials=0,
        step_days=STEP_DAYS,
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


#: What a price rise moves: every spend window and the average order value (not ratios or counts).
MONEY = {f.name for f in FEATURES if f.name.startswith("spend_") and f.name != "spend_trend_90d"} | {
    "avg_order_value_365d"
}


@pytest.fixture(scope="session")
def price_rise_home(monitored_home: Settings, tmp_path_factory) -> Settings:
    """A copy whose next day's snapshot is the test cutoff's with prices 30% higher for a random half of
    the customers (every monetary feature of those customers × 1.3), scored by the same champions."""
    target = tmp_path_factory.mktemp("price_rise") / "home"
    shutil.copytree(monitored_home.home, target, symlinks=True)
    settings = Settings.resolve(target)
    snapshots = settings.feature_snapshots
    frame = snapshots.read(TEST_CUTOFF)
    later = TEST_CUTOFF + timedelta(days=1)
    rises = np.random.default_rng(7).random(len(frame)) < 0.5
    frame.loc[rises, sorted(MONEY)] *= 1.3
    frame["event_timestamp"] = frame["event_timestamp"] + timedelta(days=1)
    frame.to_parquet(snapshots.path(later), index=False)
    from pipelines.score import score

    score(settings, later)
    return settings
