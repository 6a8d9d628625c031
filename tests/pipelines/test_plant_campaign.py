"""A planted campaign on synthetic data: the measurement finds the known effect where it is, and only there."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from features.data.store import DataStore
from features.errors import InputError
from features.settings import Settings
from pipelines import campaigns
from pipelines.plant_campaign import plant_campaign
from tests.features.tables import scalar

pytestmark = pytest.mark.slow
LAUNCH = date(2024, 9, 1)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    from features.data.synth import generate

    settings = Settings.resolve(tmp_path_factory.mktemp("planted") / "home")
    generate(DataStore(settings.data_dir), 4_000, 7, start=date(2024, 1, 1), days=365, now=datetime.now(UTC))
    before = scalar(settings, "SELECT count(*) FROM {t}", "orders")
    truth = plant_campaign(settings, LAUNCH, window_days=60, lift=1.0, seed=3)
    return settings, truth, before


def test_the_planted_orders_are_imported_like_any_file(planted):
    settings, truth, before = planted
    assert truth.extra_orders > 0
    assert scalar(settings, "SELECT count(*) FROM {t}", "orders") == before + truth.extra_orders


def test_the_measurement_covers_the_true_effect_and_excludes_zero(planted):
    settings, truth, _ = planted
    result = campaigns.measure(settings, "planted")
    orders = result["outcomes"]["orders"]["cuped"]
    assert orders["low"] <= truth.true_effect_orders <= orders["high"] and orders["excludes_zero"]
    assert result["truth"]["primary_covered"] is True and result["design"].startswith("planted")


def test_the_effect_is_where_it_was_planted_and_not_elsewhere(planted):
    settings, _, _ = planted
    by_tier = {row["group"]: row for row in campaigns.measure(settings, "planted")["by_tier"]}
    assert by_tier["at-risk"]["low"] > 0
    assert by_tier["loyal"]["low"] <= 0 <= by_tier["loyal"]["high"]


def test_planting_the_same_name_twice_is_refused(planted):
    settings, _, _ = planted
    with pytest.raises(InputError, match="campaign planted exists"):
        plant_campaign(settings, date(2024, 10, 1))
