"""Assigning tiers: shares come out as configured, states come first, predictions and history differ."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.errors import InputError
from tests.tiering.customers import customer, customers
from tiering import assign_tiers, load_policy, parse_policy, policy_scores, rfmp_components

LIFECYCLE = load_policy("lifecycle")
RFMP = load_policy("rfmp")


def frame(*rows: dict[str, object]) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def tier_of(assigned: pd.DataFrame) -> dict[str, str]:
    return dict(zip(assigned.customer_id, assigned.tier, strict=True))


def test_lifecycle_shares_come_out_as_configured_when_everyone_ordered_recently():
    data = customers(2000, recent=True)
    assigned = assign_tiers(data, LIFECYCLE)
    assert assigned.tier.value_counts().to_dict() == {"Silver": 1600, "Gold": 300, "Platinum": 100}
    top = data.nlargest(100, "expected_value").customer_id
    assert set(assigned.customer_id[assigned.tier == "Platinum"]) == set(top)
    assert list(assigned.columns) == ["customer_id", "tier", "tier_rank", "score", "rule"]
    assert (assigned.tier.map(LIFECYCLE.ranks) == assigned.tier_rank).all()
    assert (assigned.score == data.expected_value).all()


def test_value_shares_count_only_the_customers_reaching_the_value_tiers():
    active = customers(1000, seed=1, recent=True)
    gone = customers(1000, seed=2, recent=True).assign(
        customer_id=lambda f: "G" + f.customer_id, days_since_last_order=200.0, expected_value=1e6
    )
    assigned = assign_tiers(pd.concat([active, gone]), LIFECYCLE)
    assert assigned.tier.value_counts().to_dict() == {
        "Churned": 1000,
        "Silver": 800,
        "Gold": 150,
        "Platinum": 50,
    }


def test_lifecycle_states_come_first_new_then_churned_then_dormant():
    rich = {"expected_value": 1e6, "spend_365d": 1e6}
    assigned = assign_tiers(
        frame(
            customer("new", tenure_days=10, days_since_last_order=2, **rich),
            customer("new-and-quiet", tenure_days=29, days_since_last_order=200, **rich),
            customer("just-past-new", tenure_days=30, days_since_last_order=2),
            customer("churned", days_since_last_order=181, **rich),
            customer("dormant-edge", days_since_last_order=180, **rich),
            customer("dormant", days_since_last_order=91, **rich),
            customer("active-edge", days_since_last_order=90),
        ),
        LIFECYCLE,
    ).set_index("customer_id")
    assert assigned.tier.to_dict() == {
        "new": "New",
        "new-and-quiet": "New",
        "just-past-new": "Silver",
        "churned": "Churned",
        "dormant-edge": "Dormant",
        "dormant": "Dormant",
        "active-edge": "Silver",
    }
    assert assigned.rule["new"] == "first order 10 days ago, under 30 days: too new to judge"
    assert assigned.rule["churned"] == "no order for 181 days (over 180)"


def test_a_top_customer_without_a_recent_order_falls_to_the_next_tier_whose_recency_holds():
    data = customers(1000, recent=True)
    best = data.expected_value.idxmax()
    for days, tier in [(12, "Platinum"), (45, "Gold"), (75, "Silver")]:
        data.loc[best, "days_since_last_order"] = days
        assigned = assign_tiers(data, LIFECYCLE)
        assert assigned.tier[best] == tier
        assert assigned.rule[best].startswith(f"top 5% predicted value, ordered {days} days ago")
        assert (assigned.tier == "Platinum").sum() == 50 - (tier != "Platinum")
    assert assigned.rule[best].endswith("; Platinum needs an order within 30 days")
    gold = assigned[(assigned.tier == "Gold")].index.difference([best])
    assert set(assigned.rule[gold].str.split(",").str[0]) == {"top 5-20% predicted value"}
    silver = assigned[assigned.tier == "Silver"].index.difference([best])
    assert set(assigned.rule[silver].str.split(",").str[0]) == {"below the top 20% predicted value"}


def test_classic_and_predictive_differ_when_predictions_disagree_with_history():
    data = frame(
        *(customer(f"c{i}", expected_value=float(i), spend_365d=float(i)) for i in range(40)),
        customer("big-spender-leaving", expected_value=1.0, spend_365d=1e5),
        customer("quiet-riser", expected_value=1e4, spend_365d=10.0),
    )
    predictive, classic = tier_of(assign_tiers(data, LIFECYCLE)), tier_of(assign_tiers(data, LIFECYCLE, True))
    assert (predictive["big-spender-leaving"], classic["big-spender-leaving"]) == ("Silver", "Platinum")
    assert (predictive["quiet-riser"], classic["quiet-riser"]) == ("Platinum", "Silver")
    rule = assign_tiers(data, LIFECYCLE, classic=True).set_index("customer_id").rule["big-spender-leaving"]
    assert rule == "top 5% 365-day spend, ordered 5 days ago"


def test_predictive_rfmp_recency_reads_churn_probability_and_classic_reads_days():
    recency_only = parse_policy(
        {
            "name": "recency",
            "scoring": "rfmp",
            "weights": {"recency": 1, "frequency": 0, "monetary": 0, "potential": 0},
            "tiers": [{"name": "A", "share": 0.5}, {"name": "B"}],
        }
    )
    data = customers(200, recent=True)
    data["churn_probability"] = data.days_since_last_order / 100
    data.loc[data.index[:100], "churn_probability"] = 1 - data.churn_probability[:100]
    predictive = assign_tiers(data, recency_only).set_index("customer_id")
    classic = assign_tiers(data, recency_only, classic=True).set_index("customer_id")
    low_churn = data.nsmallest(100, "churn_probability").customer_id
    assert predictive.score[low_churn].min() > predictive.score.drop(low_churn).max()
    recent = data.days_since_last_order.rank(method="average", ascending=False)
    assert np.corrcoef(classic.score, recent)[0, 1] == pytest.approx(1)
    assert (predictive.tier != classic.tier).sum() > 20


def test_rfmp_shares_come_out_as_configured_in_both_modes():
    data = customers(2000)
    for classic in (False, True):
        counts = assign_tiers(data, RFMP, classic).tier.value_counts()
        expected = {"Diamond": 200, "Gold": 400, "Silver": 800, "Bronze": 600}
        assert all(abs(counts[name] - size) <= 2 for name, size in expected.items()), counts


def test_rfmp_score_is_the_weighted_percentile_ranks():
    data = customers(500)
    components = rfmp_components(data)
    assert components.min().min() == 0 and components.max().max() == 1
    expected = 0.30 * components.recency + 0.25 * components.frequency
    expected += 0.30 * components.monetary + 0.15 * components.potential
    assert np.allclose(policy_scores(data, RFMP), expected)
    richer = data.copy()
    richer.loc[0, "expected_value"] = richer.expected_value.max() + 1
    assert policy_scores(richer, RFMP)[0] > policy_scores(data, RFMP)[0]


def test_absolute_thresholds_cut_by_min_value():
    policy = parse_policy(
        {
            "name": "absolute",
            "scoring": "value",
            "tiers": [{"name": "A", "min_value": 500}, {"name": "B", "min_value": 100}, {"name": "C"}],
        }
    )
    values = {"a": 600.0, "a-edge": 500.0, "b": 499.99, "b-edge": 100.0, "c": 50.0}
    assigned = assign_tiers(frame(*(customer(k, expected_value=v) for k, v in values.items())), policy)
    assert tier_of(assigned) == {"a": "A", "a-edge": "A", "b": "B", "b-edge": "B", "c": "C"}
    assert assigned.rule.tolist()[1:3] == [
        "predicted value at least 500, ordered 5 days ago",
        "predicted value at least 100, ordered 5 days ago",
    ]
    assert assigned.rule.iloc[-1] == "predicted value below 100, ordered 5 days ago"


def test_equal_scores_share_the_better_tier():
    values = [1000.0 - i for i in range(40)] + [500.0] * 20 + list(np.linspace(1, 100, 940))
    data = frame(*(customer(f"c{i}", expected_value=v) for i, v in enumerate(values)))
    assigned = assign_tiers(data, LIFECYCLE)
    assert (assigned.tier == "Platinum").sum() == 60
    assert set(assigned.tier[40:60]) == {"Platinum"}


def test_a_missing_column_is_named():
    data = customers(50).drop(columns=["expected_value"])
    with pytest.raises(InputError, match="customer frame: missing column expected_value"):
        assign_tiers(data, LIFECYCLE)
    assert len(assign_tiers(data, LIFECYCLE, classic=True)) == 50
    with pytest.raises(InputError, match="missing columns tenure_days, expected_value"):
        assign_tiers(data.drop(columns=["tenure_days"]), LIFECYCLE)
    with pytest.raises(InputError, match="missing column growth_potential"):
        assign_tiers(customers(50).drop(columns=["growth_potential"]), RFMP)


def test_missing_or_impossible_values_and_duplicates_are_refused():
    data = customers(50)
    data.loc[3, "churn_probability"] = 1.5
    with pytest.raises(
        InputError, match=r"churn_probability has 1 missing or invalid values \(first: customer C00003"
    ):
        assign_tiers(data, RFMP)
    data = customers(50)
    data.loc[7, "expected_value"] = np.nan
    with pytest.raises(InputError, match="expected_value has 1 missing"):
        assign_tiers(data, LIFECYCLE)
    data = customers(50)
    data.loc[9, "customer_id"] = "C00001"
    with pytest.raises(InputError, match="customer C00001 appears more than once"):
        assign_tiers(data, LIFECYCLE)


def test_the_input_is_not_changed_and_its_order_is_kept():
    data = customers(300).sample(frac=1, random_state=3)
    before = data.copy()
    assigned = assign_tiers(data, RFMP)
    pd.testing.assert_frame_equal(data, before)
    assert assigned.customer_id.tolist() == data.customer_id.tolist()


def test_an_empty_frame_gives_an_empty_result():
    assigned = assign_tiers(customers(0), LIFECYCLE)
    assert assigned.empty and list(assigned.columns) == ["customer_id", "tier", "tier_rank", "score", "rule"]
