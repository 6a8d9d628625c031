"""Retention: a short dip keeps the tier, a long one drops it, lifecycle states apply at once."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from features.errors import InputError
from tests.tiering.customers import customers
from tiering import apply_retention, assign_tiers, load_policy, parse_policy

LIFECYCLE = load_policy("lifecycle")
DAY0 = date(2024, 3, 1)


def assigned(**tiers: str) -> pd.DataFrame:
    """Policy tiers as `assign_tiers` would give them, one customer per keyword."""
    return pd.DataFrame(
        {
            "customer_id": list(tiers),
            "tier": list(tiers.values()),
            "tier_rank": [LIFECYCLE.ranks[tier] for tier in tiers.values()],
            "score": 1.0,
            "rule": [f"rule says {tier}" for tier in tiers.values()],
        }
    )


def day(n: int) -> date:
    return DAY0 + timedelta(days=n)


def run(previous: pd.DataFrame | None, n: int, policy=LIFECYCLE, **tiers: str) -> pd.DataFrame:
    return apply_retention(assigned(**tiers), previous, day(n), policy=policy)


def row(snapshot: pd.DataFrame, customer_id: str = "a") -> pd.Series:
    return snapshot.set_index("customer_id").loc[customer_id]


def test_the_first_run_takes_the_policy_tiers():
    snapshot = run(None, 0, a="Platinum", b="New")
    assert snapshot.tier.tolist() == ["Platinum", "New"]
    assert snapshot.change.tolist() == ["new", "new"]
    assert snapshot.previous_tier.isna().all() and snapshot.below_since.isna().all()
    assert list(snapshot.columns) == [
        "customer_id",
        "tier",
        "tier_rank",
        "previous_tier",
        "policy_tier",
        "below_since",
        "change",
        "reason",
    ]


def test_a_dip_shorter_than_the_grace_keeps_the_tier_and_a_longer_one_drops_it():
    snapshot = run(None, 0, a="Platinum")
    snapshot = run(snapshot, 10, a="Gold")
    held = row(snapshot)
    assert (held.tier, held.tier_rank, held.policy_tier) == ("Platinum", 0, "Gold")
    assert held.change == f"held (grace until {day(40)})"
    assert held.below_since == pd.Timestamp(day(10))
    assert held.reason.startswith(f"keeps Platinum during the 30-day grace (below it since {day(10)})")
    assert held.reason.endswith("the rule says Gold: rule says Gold")
    for n, tier in [(25, "Silver"), (39, "Gold")]:
        snapshot = run(snapshot, n, a=tier)
        assert row(snapshot).tier == "Platinum"
        assert row(snapshot).below_since == pd.Timestamp(day(10))
        assert row(snapshot).change == f"held (grace until {day(40)})"
    snapshot = run(snapshot, 40, a="Gold")
    dropped = row(snapshot)
    assert (dropped.tier, dropped.tier_rank, dropped.previous_tier) == ("Gold", 1, "Platinum")
    assert dropped.change == "downgrade" and pd.isna(dropped.below_since)
    assert dropped.reason == f"below Platinum since {day(10)} (grace of 30 days over): rule says Gold"


def test_qualifying_again_resets_the_grace():
    snapshot = run(run(None, 0, a="Platinum"), 10, a="Gold")
    snapshot = run(snapshot, 20, a="Platinum")
    assert (row(snapshot).change, row(snapshot).tier) == ("kept", "Platinum")
    assert pd.isna(row(snapshot).below_since)
    snapshot = run(snapshot, 30, a="Gold")
    assert row(snapshot).change == f"held (grace until {day(60)})"
    snapshot = run(snapshot, 55, a="Gold")
    assert row(snapshot).tier == "Platinum"


def test_upgrades_apply_at_once():
    snapshot = run(run(None, 0, a="Silver", b="Dormant"), 1, a="Platinum", b="Silver")
    assert snapshot.tier.tolist() == ["Platinum", "Silver"]
    assert snapshot.change.tolist() == ["upgrade", "upgrade"]
    assert snapshot.reason.tolist() == ["rule says Platinum", "rule says Silver"]


def test_lifecycle_states_bypass_the_grace():
    snapshot = run(run(None, 0, a="Platinum", b="Gold"), 1, a="Dormant", b="Churned")
    assert snapshot.tier.tolist() == ["Dormant", "Churned"]
    assert snapshot.change.tolist() == ["downgrade", "downgrade"]
    assert row(snapshot).reason == "Dormant is a lifecycle state, applied at once: rule says Dormant"


def test_which_tiers_bypass_the_grace_is_configurable():
    patient = parse_policy(LIFECYCLE.model_dump(mode="json") | {"immediate_tiers": []})
    snapshot = run(run(None, 0, policy=patient, a="Platinum"), 1, policy=patient, a="Dormant")
    assert (row(snapshot).tier, row(snapshot).change) == ("Platinum", f"held (grace until {day(31)})")
    quick = parse_policy(LIFECYCLE.model_dump(mode="json") | {"immediate_tiers": ["Gold"]})
    snapshot = run(run(None, 0, policy=quick, a="Gold"), 1, policy=quick, a="Silver")
    assert (row(snapshot).tier, row(snapshot).change) == ("Silver", "downgrade")
    assert row(snapshot).reason == "Gold is a lifecycle state, left at once: rule says Silver"


def test_grace_days_come_from_the_policy_unless_given():
    snapshot = run(None, 0, a="Platinum")
    assert apply_retention(assigned(a="Gold"), snapshot, day(0), 0, policy=LIFECYCLE).tier[0] == "Gold"
    short = parse_policy(LIFECYCLE.model_dump(mode="json") | {"grace_days": 7})
    held = run(run(None, 0, policy=short, a="Platinum"), 1, policy=short, a="Gold")
    assert row(held).change == f"held (grace until {day(8)})"


def test_an_ended_override_is_not_protected():
    snapshot = run(None, 0, a="Platinum").assign(change="override")
    snapshot = run(snapshot, 1, a="Silver")
    assert (row(snapshot).tier, row(snapshot).change) == ("Silver", "downgrade")
    assert row(snapshot).reason == "override ended: rule says Silver"


def test_customers_are_matched_by_id_and_stale_tiers_start_over():
    previous = pd.DataFrame(
        {
            "customer_id": [1, 2, 3],
            "tier": ["Platinum", "Titanium", "Gold"],
            "below_since": [None, None, None],
        }
    )
    snapshot = run(previous, 0, **{"1": "Gold", "2": "Gold"})
    assert snapshot.customer_id.tolist() == ["1", "2"]
    assert snapshot.change.tolist() == [f"held (grace until {day(30)})", "new"]
    assert snapshot.tier.tolist() == ["Platinum", "Gold"]


def test_bad_snapshots_are_refused():
    with pytest.raises(InputError, match="previous snapshot: missing column below_since"):
        run(pd.DataFrame({"customer_id": ["a"], "tier": ["Gold"]}), 0, a="Gold")
    twice = pd.DataFrame({"customer_id": ["a", "a"], "tier": ["Gold", "Gold"], "below_since": [None, None]})
    with pytest.raises(InputError, match="customer a appears more than once"):
        run(twice, 0, a="Gold")
    with pytest.raises(InputError, match="tier 'Platinum' is not in policy 'rfmp'"):
        apply_retention(assigned(a="Gold").assign(tier="Platinum"), None, DAY0, policy=load_policy("rfmp"))


def test_on_a_population_nobody_loses_a_reward_within_the_grace():
    data = customers(3000, seed=11)
    first = apply_retention(assign_tiers(data, LIFECYCLE), None, day(0), policy=LIFECYCLE)
    rng = np.random.default_rng(5)
    later = data.assign(
        expected_value=data.expected_value * rng.lognormal(0, 0.5, len(data)),
        days_since_last_order=data.days_since_last_order + 7,
        tenure_days=data.tenure_days + 7,
    )
    second = apply_retention(assign_tiers(later, LIFECYCLE), first, day(7), policy=LIFECYCLE)
    changes = second.change.str.split(" ").str[0].value_counts()
    assert {"kept", "held", "upgrade", "downgrade"} <= set(changes.index)
    downgraded = second[second.change == "downgrade"]
    assert downgraded.tier.isin(LIFECYCLE.immediate_tiers).all()
    held = second[second.change.str.startswith("held")]
    assert (held.tier_rank < held.policy_tier.map(LIFECYCLE.ranks)).all()
    assert (held.below_since == pd.Timestamp(day(7))).all()
