"""The population-wide quantities of tiering, computed from order statistics and ranks alone, give
exactly what ranking everyone in one frame gives: so an engine that never holds all customers in one
place (Spark) tiers them the same."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.tiering.customers import customers
from tiering import (
    assign_tiers,
    load_policy,
    parse_policy,
    percentile,
    percentile_of_ranks,
    policy_scores,
    required_columns,
    risk_flags,
    share_floors,
)
from tiering.risk import high_value_cut, linear_quantile

LIFECYCLE = load_policy("lifecycle")
RFMP = load_policy("rfmp")


def samples() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    arrays = [rng.lognormal(3, 1, n) for n in (1, 2, 3, 4, 5, 7, 10, 11, 99, 1000, 1001)]
    arrays += [rng.integers(0, 4, n).astype(float) for n in (1, 6, 50, 333)]  # many ties
    arrays += [np.array([0.1, 0.2, 0.3]) * k for k in (1, 3, 7e-5, 1e9)]
    return arrays


@pytest.mark.parametrize("q", [0.8, 0.5, 0.25, 0.1, 0.95, 0.0, 1.0])
def test_the_linear_quantile_from_order_statistics_is_pandas_quantile_to_the_last_bit(q):
    for values in samples():
        ordered = np.sort(values)
        got = linear_quantile(len(values), q, lambda positions, o=ordered: o[positions])
        assert got == float(pd.Series(values).quantile(q)), (len(values), q)


def test_the_high_value_cut_skips_missing_values_and_is_infinite_for_no_one():
    values = pd.Series([5.0, np.nan, 1.0, 3.0, np.nan, 2.0])
    assert high_value_cut(values) == float(values.quantile(0.8))
    assert high_value_cut(pd.Series([], dtype=float)) == np.inf


def test_flags_with_the_cut_given_equal_the_flags_computed_over_everyone():
    data = customers(500, seed=4)
    flags = risk_flags(data)
    cut = high_value_cut(data.expected_value)
    parts = [risk_flags(data.iloc[rows], value_cut=cut) for rows in np.array_split(np.arange(len(data)), 3)]
    assert pd.concat(parts).tolist() == flags.tolist()


def test_percentiles_from_average_ranks_equal_percentiles():
    values = pd.Series([3.0, np.nan, 1.0, 3.0, 2.0, 3.0, np.nan])
    ranks = values.rank(method="average")
    assert percentile_of_ranks(ranks, 5).tolist() == percentile(values).tolist()
    single = pd.Series([np.nan, 4.0])
    assert percentile_of_ranks(single.rank(), 1).tolist() == percentile(single).tolist() == [0.0, 1.0]


@pytest.mark.parametrize("policy", [LIFECYCLE, RFMP], ids=lambda p: p.name)
def test_tiers_of_parts_with_the_populations_floors_equal_the_tiers_of_everyone(policy):
    data = customers(3000, seed=9)
    data["orders_365d"] = data.orders_365d.clip(upper=20)  # ties in frequency
    data.loc[::7, "expected_value"] = 100.0  # ties in value, across band boundaries
    everyone = assign_tiers(data, policy)
    scores = policy_scores(data, policy).to_numpy()
    active = ~everyone.tier.isin([tier.name for tier in policy.state_tiers]).to_numpy()
    ordered = np.sort(scores[active])
    floors = share_floors(policy, len(ordered), lambda positions: ordered[positions])
    parts = [
        assign_tiers(data.iloc[rows], policy, scores=scores[rows], floors=floors)
        for rows in np.array_split(np.arange(len(data)), 4)
    ]
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), everyone)
    assert set(required_columns(policy)) <= set(data.columns)


def test_a_band_of_no_one_starts_above_every_score():
    policy = parse_policy(
        {
            "name": "tiny",
            "scoring": "value",
            "tiers": [{"name": "Top", "share": 0.01}, {"name": "All", "share": 0.99}, {"name": "Rest"}],
        }
    )
    ordered = np.array([1.0, 2.0, 3.0])
    floors = share_floors(policy, 3, lambda positions: ordered[positions])
    assert floors.tolist() == [np.inf, 1.0]
    assert share_floors(policy, 0, lambda positions: ordered[positions]).tolist() == [np.inf, np.inf]
