"""Campaign definitions: validated with field-named errors; audiences and a deterministic split."""

from __future__ import annotations

import pandas as pd
import pytest

from features.errors import InputError
from tiering import load_policy
from tiering.campaigns import audience_of, load_campaign, parse_campaign, split

LIFECYCLE = load_policy("lifecycle")
BASE = {"name": "winback", "offer": "coupon 10 EUR"}


def _snapshot() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "tier": ["Dormant", "Dormant", "Gold", "Silver"],
            "churn_probability": [0.6, 0.1, 0.5, 0.7],
            "expected_value": [10.0, 20.0, 300.0, 50.0],
            "growth_potential": [0.2, 0.2, 0.6, 0.1],
            "risk_flags": ["", "", "high_value_at_risk", "churn_risk"],
        }
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"control_share": 0.7}, r"control_share: Input should be less than or equal to 0.5"),
        ({"outcome": "profit"}, r"outcome: Input should be 'retained', 'orders', 'spend' or 'margin'"),
        ({"budget": 5}, r"budget: unknown field \(allowed: name, description, offer"),
        (
            {"audience": {"tier": ["Gold"]}},
            r"audience.tier: unknown field \(allowed: tiers, personas, risk_flags",
        ),
        ({"name": "../escaped"}, r"name: String should match pattern"),
        (
            {"audience": {"min_churn_probability": 0.8, "max_churn_probability": 0.2}},
            r"audience: min_churn_probability 0.8 is above max_churn_probability 0.2",
        ),
    ],
)
def test_a_bad_campaign_is_refused_naming_the_field(change, message):
    with pytest.raises(InputError, match=message):
        parse_campaign({**BASE, **change}, source="winback.yaml")


def test_the_file_name_is_the_campaign_name(tmp_path):
    path = tmp_path / "other.yaml"
    path.write_text("name: winback\noffer: coupon\n")
    with pytest.raises(InputError, match="must match the file name 'other'"):
        load_campaign(path)


def test_the_audience_is_every_condition_at_once():
    campaign = parse_campaign(
        {**BASE, "audience": {"tiers": ["Dormant", "Silver"], "min_churn_probability": 0.5}}
    )
    assert audience_of(campaign, _snapshot(), LIFECYCLE).customer_id.tolist() == ["a", "d"]
    flagged = parse_campaign({**BASE, "audience": {"risk_flags": ["high_value_at_risk"]}})
    assert audience_of(flagged, _snapshot(), LIFECYCLE).customer_id.tolist() == ["c"]


def test_an_audience_tier_outside_the_policy_is_refused_naming_the_tiers():
    campaign = parse_campaign({**BASE, "audience": {"tiers": ["Platnum"]}})
    with pytest.raises(
        InputError, match=r"audience.tiers: 'Platnum' not a tier of policy lifecycle \(tiers: Platinum"
    ):
        audience_of(campaign, _snapshot(), LIFECYCLE)


def test_an_audience_of_personas_by_name_or_id_picks_their_customers():
    snapshot = _snapshot().assign(
        persona_id=[1, 2, 1, 3],
        persona=["Evening shoppers", "Weekend shoppers", "Evening shoppers", "Family shoppers"],
    )
    by_name = parse_campaign({**BASE, "audience": {"personas": ["Evening shoppers"]}}, "test")
    by_id = parse_campaign({**BASE, "audience": {"personas": [3], "tiers": ["Silver"]}}, "test")
    assert audience_of(by_name, snapshot, LIFECYCLE).customer_id.tolist() == ["a", "c"]
    assert audience_of(by_id, snapshot, LIFECYCLE).customer_id.tolist() == ["d"]


def test_an_audience_persona_the_snapshot_lacks_is_refused_naming_the_personas():
    snapshot = _snapshot().assign(persona_id=[1, 1, 1, 1], persona=["Evening shoppers"] * 4)
    campaign = parse_campaign({**BASE, "audience": {"personas": ["Night owls"]}}, "test")
    with pytest.raises(
        InputError, match=r"audience.personas: 'Night owls' not a persona .*1: Evening shoppers"
    ):
        audience_of(campaign, snapshot, LIFECYCLE)
    with pytest.raises(InputError, match="the snapshot has no personas"):
        audience_of(campaign, _snapshot(), LIFECYCLE)


def test_the_split_depends_only_on_the_campaign_and_the_customer():
    ids = pd.Series([str(i) for i in range(20_000)])
    held_out = split("winback", ids, 0.2)
    assert abs(held_out.mean() - 0.2) < 0.01
    reordered = split("winback", ids[::-1].reset_index(drop=True), 0.2)
    assert held_out[::-1].tolist() == reordered.tolist()
    assert (split("other-campaign", ids, 0.2) != held_out).any()
