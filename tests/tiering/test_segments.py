"""Campaign segments: the right customers, the tier's benefit, and a reproducible control group held out."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from features.errors import InputError
from tests.tiering.customers import customers
from tiering import assign_tiers, load_policy, parse_policy
from tiering.reports import SEGMENTS, export_segment, segment_members

LIFECYCLE = load_policy("lifecycle")
RFMP = load_policy("rfmp")
AS_OF = date(2024, 3, 1)


def snapshot(policy=LIFECYCLE, n: int = 1000, seed: int = 7, as_of: date = AS_OF) -> pd.DataFrame:
    """Seeded customers with their policy tiers, shaped like a tier snapshot."""
    frame = customers(n, seed)
    tiers = assign_tiers(frame, policy)
    return frame[["customer_id", "churn_probability", "expected_value", "growth_potential"]].assign(
        tier=tiers.tier.to_numpy(), as_of=pd.Timestamp(as_of, tz="UTC")
    )


def rows(*customers: tuple[str, str, float, float]) -> pd.DataFrame:
    """(customer_id, tier, churn_probability, growth_potential) rows, expected value 10."""
    frame = pd.DataFrame(customers, columns=["customer_id", "tier", "churn_probability", "growth_potential"])
    return frame.assign(expected_value=10.0, as_of=pd.Timestamp(AS_OF, tz="UTC"))


def members(frame: pd.DataFrame, segment: str, policy=LIFECYCLE) -> list[str]:
    return sorted(segment_members(frame, policy, segment).customer_id)


def test_each_segment_picks_its_customers():
    frame = rows(
        ("plat-risky", "Platinum", 0.3, 0.9),
        ("gold-risky", "Gold", 0.8, 0.1),
        ("gold-safe", "Gold", 0.29, 0.5),
        ("silver-risky", "Silver", 0.9, 0.49),
        ("dormant", "Dormant", 0.9, 0.0),
        ("churned", "Churned", 1.0, 0.7),
        ("new", "New", 0.1, 0.0),
    )
    assert members(frame, "at-risk-high-value") == ["gold-risky", "plat-risky"]
    assert members(frame, "dormant-winback") == ["churned", "dormant"]
    assert members(frame, "growth-opportunity") == ["churned", "gold-safe"]
    assert members(frame, "new-welcome") == ["new"]
    assert list(SEGMENTS) == ["at-risk-high-value", "dormant-winback", "growth-opportunity", "new-welcome"]


def test_an_export_holds_back_a_control_group_that_never_gets_the_benefit():
    frame = snapshot()
    before = frame.copy()
    export = export_segment(frame, LIFECYCLE, "growth-opportunity", control_share=0.1, seed=1)
    eligible = set(segment_members(frame, LIFECYCLE, "growth-opportunity").customer_id)
    treated, control = set(export.treated.customer_id), set(export.control.customer_id)
    assert treated.isdisjoint(control) and treated | control == eligible
    assert len(control) == round(0.1 * len(eligible)) and len(eligible) > 200
    assert export.treated.columns.tolist() == [
        "customer_id",
        "tier",
        "benefit",
        "expected_value",
        "churn_probability",
    ]
    assert export.control.columns.tolist() == export.treated.columns.tolist()
    assert export.treated.expected_value.is_monotonic_decreasing
    assert (export.segment, export.policy, export.as_of, export.seed) == (
        "growth-opportunity",
        "lifecycle",
        AS_OF,
        1,
    )
    benefits = {"Gold": "double points", "Silver": "5% voucher", "New": "welcome offer"}
    for tier, benefit in benefits.items():
        assert set(export.treated.benefit[export.treated.tier == tier]) == {benefit}
    pd.testing.assert_frame_equal(frame, before)


@pytest.mark.parametrize("share", [0.0, 0.05, 0.25, 0.5])
def test_the_control_share_is_as_configured(share: float):
    export = export_segment(snapshot(n=300), LIFECYCLE, "growth-opportunity", control_share=share)
    eligible = len(export.treated) + len(export.control)
    assert len(export.control) == int(share * eligible + 0.5)


def test_the_control_group_is_fixed_by_seed_segment_and_date_not_by_row_order():
    frame = snapshot()
    first = export_segment(frame, LIFECYCLE, "growth-opportunity", seed=3)
    shuffled = export_segment(frame.sample(frac=1, random_state=0), LIFECYCLE, "growth-opportunity", seed=3)
    pd.testing.assert_frame_equal(first.control, shuffled.control)
    pd.testing.assert_frame_equal(first.treated, shuffled.treated)
    other_seed = export_segment(frame, LIFECYCLE, "growth-opportunity", seed=4)
    later = export_segment(
        frame.assign(as_of=pd.Timestamp("2024-03-08", tz="UTC")), LIFECYCLE, "growth-opportunity", seed=3
    )
    control = set(first.control.customer_id)
    assert control != set(other_seed.control.customer_id)
    assert control != set(later.control.customer_id) and later.as_of == date(2024, 3, 8)


def test_rfmp_segments_use_its_tiers_and_benefits():
    frame = snapshot(RFMP)
    growth = export_segment(frame, RFMP, "growth-opportunity")
    assert set(growth.treated.tier) == {"Gold", "Silver", "Bronze"}
    assert set(growth.treated.benefit) == {"double points", "5% voucher", "3% voucher"}
    frame.loc[frame.tier == "Diamond", "churn_probability"] = 0.4
    at_risk = export_segment(frame, RFMP, "at-risk-high-value", control_share=0)
    assert set(at_risk.treated.tier) == {"Diamond"} and set(at_risk.treated.benefit) == {"free delivery"}
    assert at_risk.control.empty
    empty = export_segment(frame, RFMP, "dormant-winback")
    assert empty.treated.empty and empty.control.empty


def test_benefits_come_from_the_policy_and_a_tier_without_one_is_refused():
    tiers = [
        {"name": "Top", "share": 0.1, "benefits": [{"name": "triple points", "kind": "points"}]},
        {"name": "Rest", "max_days_since_last_order": 90},
        {"name": "Lapsed", "state": "inactive", "days_since_last_order_over": 90},
    ]
    custom = parse_policy({"name": "custom", "scoring": "value", "tiers": tiers})
    with pytest.raises(InputError, match="tier Lapsed has no benefits to export; add `benefits:`"):
        export_segment(snapshot(custom), custom, "dormant-winback")
    tiers[2]["benefits"] = [{"name": "free bag", "kind": "gift", "cost_per_customer": 0.8}]
    custom = parse_policy({"name": "custom", "scoring": "value", "tiers": tiers})
    export = export_segment(snapshot(custom), custom, "dormant-winback")
    assert set(export.treated.benefit) == {"free bag"}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"segment": "vip"}, "unknown segment 'vip' \\(known: at-risk-high-value, dormant-winback, growth"),
        ({"control_share": 0.6}, "control_share: must be between 0 and 0.5, got 0.6"),
        ({"control_share": -0.1}, "control_share: must be between 0 and 0.5"),
    ],
)
def test_bad_export_requests_are_input_errors(arguments: dict, message: str):
    with pytest.raises(InputError, match=message):
        export_segment(snapshot(n=50), LIFECYCLE, **{"segment": "new-welcome", **arguments})


def test_a_snapshot_needs_one_date():
    frame = snapshot(n=50)
    frame.loc[0, "as_of"] = pd.Timestamp("2024-01-01", tz="UTC")
    with pytest.raises(InputError, match="as_of must hold one date, got 2"):
        export_segment(frame, LIFECYCLE, "new-welcome")


def test_an_export_carries_each_customers_persona_when_the_snapshot_has_one():
    frame = snapshot()
    frame["persona"] = ["Evening shoppers" if i % 2 else "Weekend shoppers" for i in range(len(frame))]
    export = export_segment(frame, LIFECYCLE, "growth-opportunity", control_share=0.2)
    listed = pd.concat([export.treated, export.control])
    expected = frame.set_index("customer_id").persona
    assert listed.persona.tolist() == expected[listed.customer_id].tolist()
    assert "persona" not in export_segment(snapshot(), LIFECYCLE, "growth-opportunity").treated
