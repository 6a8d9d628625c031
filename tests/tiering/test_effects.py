"""Campaign effects on data with a planted truth: intervals cover it, CUPED narrows them."""

from __future__ import annotations

import numpy as np
import pytest

from tiering.effects import bootstrap, cuped, minimum_detectable_effect, welch

TRUE_EFFECT = 4.0  # planted: treated customers spend 4 more on average


def _campaign(seed: int, effect: float = TRUE_EFFECT, customers: int = 2_000) -> tuple:
    """Spend before and during a campaign: skewed, with non-buyers, and correlated over time."""
    rng = np.random.default_rng(seed)
    habit = rng.gamma(2.0, 20.0, customers)
    buys = rng.random(customers) < 0.7
    before = np.where(rng.random(customers) < 0.7, rng.gamma(4.0, habit / 4.0), 0.0)
    during = np.where(buys, rng.gamma(4.0, habit / 4.0), 0.0)
    treated = rng.random(customers) < 0.5
    during = during + np.where(treated, effect, 0.0)
    return during, before, treated


@pytest.mark.slow
@pytest.mark.parametrize("estimate", ["welch", "bootstrap", "cuped"])
def test_the_95_percent_interval_covers_the_planted_effect_in_at_least_90_of_100_campaigns(estimate):
    covered = 0
    for seed in range(100):
        during, before, treated = _campaign(seed)
        if estimate == "cuped":
            during = cuped(during, before)
        effect = (
            bootstrap(during[treated], during[~treated], seed=seed)
            if estimate == "bootstrap"
            else welch(during[treated], during[~treated])
        )
        covered += effect.low <= TRUE_EFFECT <= effect.high
    assert covered >= 90, f"{covered}/100"


def test_a_large_effect_is_detected_and_a_zero_effect_is_not():
    during, _, treated = _campaign(1, effect=30.0)
    assert welch(during[treated], during[~treated]).excludes_zero
    during, _, treated = _campaign(1, effect=0.0)
    none = welch(during[treated], during[~treated])
    assert none.low < 0 < none.high and not none.excludes_zero


def test_cuped_keeps_the_difference_and_narrows_the_interval():
    during, before, treated = _campaign(3)
    raw = welch(during[treated], during[~treated])
    adjusted_spend = cuped(during, before)
    adjusted = welch(adjusted_spend[treated], adjusted_spend[~treated])
    assert adjusted.high - adjusted.low < 0.95 * (raw.high - raw.low)
    assert adjusted.difference == pytest.approx(raw.difference, abs=raw.high - raw.low)


def test_a_covariate_without_spread_changes_nothing():
    outcome = np.array([1.0, 2.0, 3.0])
    assert cuped(outcome, np.ones(3)).tolist() == outcome.tolist()


def test_the_minimum_detectable_effect_shrinks_with_the_square_root_of_the_sample():
    during, _, treated = _campaign(4, customers=8_000)
    small = minimum_detectable_effect(during[treated][:500], during[~treated][:500])
    large = minimum_detectable_effect(during[treated][:2000], during[~treated][:2000])
    assert large == pytest.approx(small / 2, rel=0.15)


def test_an_effect_needs_two_customers_in_each_group():
    with pytest.raises(ValueError, match="at least 2 customers in each group"):
        welch(np.array([1.0]), np.array([1.0, 2.0]))
