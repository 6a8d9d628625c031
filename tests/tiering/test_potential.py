"""RFMP's P: growth potential lifts active customers with room to grow and never lifts lapsed ones."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.tiering.customers import customer
from tiering import assign_tiers, load_policy, parse_policy, rfmp_components
from tiering.reference import TierReference

RFMP = load_policy("rfmp")
POTENTIAL_ONLY = parse_policy(
    {
        "name": "potential",
        "scoring": "rfmp",
        "weights": {"recency": 0, "frequency": 0, "monetary": 0, "potential": 1},
        "tiers": [{"name": "Grow", "share": 0.25}, {"name": "Keep"}],
    }
)


def population() -> pd.DataFrame:
    """Eight alike active customers who differ only in growth potential, and two lapsed customers
    (no order in the horizon, so no growth potential)."""
    rows = [customer(f"active-{i}", growth_potential=0.1 * (i + 1)) for i in range(8)]
    rows += [customer(f"lapsed-{i}", growth_potential=np.nan, days_since_last_order=120.0) for i in range(2)]
    return pd.DataFrame(rows)


def test_more_growth_potential_ranks_an_active_customer_higher():
    assigned = assign_tiers(population(), RFMP).set_index("customer_id")
    scores = assigned.score[[f"active-{i}" for i in range(8)]]
    assert scores.is_monotonic_increasing and scores.iloc[-1] > scores.iloc[0]


def test_the_customers_with_most_growth_potential_reach_the_potential_tier():
    assigned = assign_tiers(population(), POTENTIAL_ONLY).set_index("customer_id")
    assert set(assigned.index[assigned.tier == "Grow"]) == {"active-5", "active-6", "active-7"}


def test_a_lapsed_customer_earns_nothing_from_potential_and_moves_no_one_elses():
    data = population()
    components = rfmp_components(data).set_index(data.customer_id)
    assert components.potential[["lapsed-0", "lapsed-1"]].tolist() == [0.0, 0.0]
    active = components.potential[[f"active-{i}" for i in range(8)]]
    assert active.min() == 0 and active.max() == 1  # ranked among the active customers alone


def test_a_customer_tiered_against_the_snapshot_without_growth_potential_gets_no_potential():
    reference = TierReference.from_population(population(), POTENTIAL_ONLY)
    answered = pd.DataFrame(
        [
            customer("new-lapsed", growth_potential=np.nan, days_since_last_order=120.0),
            customer("new-active", growth_potential=0.75),
        ]
    )
    assert reference.scores(answered).tolist() == [0.0, 0.875]
    assert reference.assign(answered).tier.tolist() == ["Keep", "Grow"]
