"""Tier KPIs: summaries follow the policy and add up, migrations balance, at-risk lists are the right ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.errors import InputError
from tests.tiering.customers import customers
from tiering import assign_tiers, load_policy
from tiering.reports import at_risk_top_tier, flow_rates, migration_matrix, tier_summary
from tiering.reports.kpis import offers_by_tier, persona_by_tier

LIFECYCLE = load_policy("lifecycle")
RFMP = load_policy("rfmp")
POLICIES = pytest.mark.parametrize("policy", [LIFECYCLE, RFMP], ids=["lifecycle", "rfmp"])


def snapshot(policy, n: int = 400, seed: int = 7) -> pd.DataFrame:
    """Seeded customers with their policy tiers, shaped like a tier snapshot."""
    frame = customers(n, seed)
    tiers = assign_tiers(frame, policy)
    return frame[["customer_id", "churn_probability", "expected_value", "growth_potential"]].assign(
        tier=tiers.tier.to_numpy(), tier_rank=tiers.tier_rank.to_numpy()
    )


def rows(*customers: tuple[str, str, float, float]) -> pd.DataFrame:
    """(customer_id, tier, expected_value, churn_probability) rows."""
    return pd.DataFrame(customers, columns=["customer_id", "tier", "expected_value", "churn_probability"])


@POLICIES
def test_the_summary_has_every_tier_in_policy_order_and_its_shares_add_up(policy):
    current = snapshot(policy)
    before = current.copy()
    summary = tier_summary(current, policy)
    assert summary.index.tolist() == policy.tier_names
    assert summary.tier_rank.tolist() == list(range(len(policy.tiers)))
    counts = current.tier.value_counts().reindex(policy.tier_names, fill_value=0)
    assert summary.customers.tolist() == counts.tolist()
    assert summary.share.sum() == pytest.approx(1)
    assert summary.predicted_value_share.sum() == pytest.approx(1)
    assert summary.predicted_value_total.sum() == pytest.approx(current.expected_value.sum())
    bands = summary[["risk_lt_10", "risk_10_30", "risk_30_50", "risk_ge_50"]]
    assert bands.sum(axis=1).tolist() == summary.customers.tolist()
    pd.testing.assert_frame_equal(current, before)


def test_the_summary_reports_means_and_risk_bands_and_keeps_empty_tiers():
    current = rows(
        ("a", "Platinum", 100.0, 0.05), ("b", "Platinum", 300.0, 0.35), ("c", "Silver", 100.0, 0.6)
    )
    summary = tier_summary(current, LIFECYCLE)
    assert summary.columns.tolist() == [
        "tier_rank",
        "customers",
        "share",
        "predicted_value_total",
        "predicted_value_share",
        "predicted_arpu",
        "mean_churn_probability",
        "risk_lt_10",
        "risk_10_30",
        "risk_30_50",
        "risk_ge_50",
        "benefits",
        "benefit_cost_total",
    ]
    platinum, gold = summary.loc["Platinum"], summary.loc["Gold"]
    assert platinum.benefits == "free delivery; double points" and platinum.benefit_cost_total == 2 * 7.0
    assert (platinum.customers, platinum.share) == (2, pytest.approx(2 / 3))
    assert (platinum.predicted_value_share, platinum.predicted_arpu) == (0.8, 200.0)
    assert platinum.mean_churn_probability == pytest.approx(0.2)
    assert platinum[["risk_lt_10", "risk_10_30", "risk_30_50", "risk_ge_50"]].tolist() == [1, 0, 1, 0]
    assert summary.loc["Silver", "risk_ge_50"] == 1
    assert (gold.customers, gold.share, gold.predicted_value_share) == (0, 0.0, 0.0)
    assert np.isnan(gold.predicted_arpu) and np.isnan(gold.mean_churn_probability)


def test_the_summary_compares_predicted_with_actual_spend():
    current = rows(("1", "Platinum", 100.0, 0.1), ("2", "Platinum", 100.0, 0.1), ("3", "Gold", 50.0, 0.1))
    spend = pd.Series({1: 300.0, 3: 100.0, 99: 1000.0})
    summary = tier_summary(current, LIFECYCLE, actual_spend=spend)
    assert summary.actual_spend_total.tolist() == [300.0, 100.0, 0.0, 0.0, 0.0, 0.0]
    assert summary.actual_spend_share.tolist()[:2] == [0.75, 0.25]
    assert summary.loc["Platinum", "actual_arpu"] == 150.0
    assert summary.columns.get_loc("actual_arpu") < summary.columns.get_loc("mean_churn_probability")


def test_the_summary_refuses_tables_it_cannot_count():
    with pytest.raises(InputError, match="tier 'Diamond' is not in policy 'lifecycle'"):
        tier_summary(rows(("a", "Diamond", 1.0, 0.1)), LIFECYCLE)
    with pytest.raises(InputError, match="missing column churn_probability"):
        tier_summary(rows(("a", "Gold", 1.0, 0.1)).drop(columns="churn_probability"), LIFECYCLE)
    with pytest.raises(InputError, match="actual_spend: customer a appears twice"):
        tier_summary(rows(("a", "Gold", 1.0, 0.1)), LIFECYCLE, pd.Series([1.0, 2.0], index=["a", "a"]))


@POLICIES
def test_migration_rows_sum_to_previous_tier_sizes_and_columns_to_current_ones(policy):
    previous = snapshot(policy, n=400, seed=7)
    current = snapshot(policy, n=420, seed=8).iloc[30:]
    matrix = migration_matrix(previous, current, policy)
    tiers = policy.tier_names
    assert matrix.index.tolist() == [*tiers, "(new)"]
    assert matrix.columns.tolist() == [*tiers, "(gone)"]
    assert (
        matrix.sum(axis=1)[tiers].tolist()
        == previous.tier.value_counts().reindex(tiers, fill_value=0).tolist()
    )
    assert (
        matrix.sum(axis=0)[tiers].tolist()
        == current.tier.value_counts().reindex(tiers, fill_value=0).tolist()
    )
    assert matrix.loc["(new)"].sum() == 20 and matrix["(gone)"].sum() == 30
    assert matrix.loc["(new)", "(gone)"] == 0
    flows = flow_rates(matrix)
    assert flows.customers.tolist() == matrix.sum(axis=1)[tiers].tolist()
    filled = flows[flows.customers > 0]
    assert np.allclose(filled[["stayed", "up", "down", "left"]].sum(axis=1), 1)


def test_migration_counts_each_move_and_flow_rates_name_its_direction():
    previous = pd.DataFrame(
        {"customer_id": [1, 2, 3, 4, 5], "tier": ["Platinum", "Gold", "Gold", "Silver", "Dormant"]}
    )
    current = pd.DataFrame(
        {"customer_id": ["1", "2", "3", "5", "6"], "tier": ["Gold", "Gold", "Platinum", "Silver", "New"]}
    )
    matrix = migration_matrix(previous, current, LIFECYCLE)
    assert matrix.loc["Platinum", "Gold"] == 1 and matrix.loc["Gold", "Gold"] == 1
    assert matrix.loc["Gold", "Platinum"] == 1 and matrix.loc["Silver", "(gone)"] == 1
    assert matrix.loc["Dormant", "Silver"] == 1 and matrix.loc["(new)", "New"] == 1
    assert matrix.to_numpy().sum() == 6
    flows = flow_rates(matrix)
    assert flows.loc["Platinum"].tolist() == [1, 0.0, 0.0, 1.0, 0.0]
    assert flows.loc["Gold"].tolist() == [2, 0.5, 0.5, 0.0, 0.0]
    assert flows.loc["Silver"].tolist() == [1, 0.0, 0.0, 0.0, 1.0]
    assert flows.loc["Dormant", "up"] == 1.0
    assert flows.loc["New"].customers == 0 and flows.loc["New", ["stayed", "up", "down", "left"]].isna().all()


def test_flow_rates_need_a_migration_matrix():
    with pytest.raises(InputError, match="expected a migration_matrix"):
        flow_rates(pd.DataFrame({"Gold": [1]}, index=["Gold"]))


def test_at_risk_top_tier_lists_the_best_tiers_above_the_threshold_most_valuable_first():
    current = rows(
        ("p", "Platinum", 100.0, 0.6),
        ("g", "Gold", 500.0, 0.3),
        ("g-safe", "Gold", 900.0, 0.29),
        ("s", "Silver", 800.0, 0.9),
        ("d", "Dormant", 700.0, 0.9),
    )
    assert at_risk_top_tier(current, LIFECYCLE).customer_id.tolist() == ["g", "p"]
    assert at_risk_top_tier(current, LIFECYCLE, top_ranks=1).customer_id.tolist() == ["p"]
    assert at_risk_top_tier(current, LIFECYCLE, churn_threshold=0.5).customer_id.tolist() == ["p"]
    assert at_risk_top_tier(current, LIFECYCLE, top_ranks=3).customer_id.tolist() == ["s", "g", "p"]
    assert at_risk_top_tier(current, LIFECYCLE).columns.tolist() == current.columns.tolist()
    diamond = rows(("x", "Diamond", 10.0, 0.5), ("y", "Silver", 10.0, 0.5))
    assert at_risk_top_tier(diamond, RFMP).customer_id.tolist() == ["x"]


@pytest.mark.parametrize(
    ("arguments", "field"), [({"churn_threshold": 1.5}, "churn_threshold"), ({"top_ranks": 0}, "top_ranks")]
)
def test_at_risk_top_tier_refuses_arguments_out_of_range(arguments, field):
    with pytest.raises(InputError, match=field):
        at_risk_top_tier(rows(("a", "Gold", 1.0, 0.5)), LIFECYCLE, **arguments)


def test_persona_by_tier_counts_each_personas_customers_per_tier():
    policy = load_policy("lifecycle")
    snapshot = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "tier": ["Gold", "Gold", "Dormant", "Silver"],
            "persona": ["Evening shoppers", "Evening shoppers", "Evening shoppers", "Weekend shoppers"],
            "expected_value": [10.0, 20.0, 0.0, 5.0],
        }
    )
    table = persona_by_tier(snapshot, policy)
    assert table.index.tolist() == ["Evening shoppers", "Weekend shoppers"]
    assert table.loc["Evening shoppers", ["Gold", "Dormant", "Silver", "customers"]].tolist() == [2, 1, 0, 3]
    assert table.loc["Evening shoppers", "mean_expected_value"] == 10.0
    assert list(table.columns[: len(policy.tier_names)]) == policy.tier_names


def test_persona_by_tier_is_empty_before_personas_are_fitted():
    snapshot = pd.DataFrame(
        {"customer_id": ["a"], "tier": ["Gold"], "persona": [None], "expected_value": [1.0]}
    )
    assert persona_by_tier(snapshot, load_policy("lifecycle")).empty


def test_offers_by_tier_counts_the_customers_offered_each_category():
    policy = load_policy("lifecycle")
    gold, silver = policy.value_tiers[0].name, policy.value_tiers[1].name
    snapshot = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "tier": [silver, gold, gold, gold],
            "offers": ["EGGS | BEER", "EGGS | MILK", "EGGS", None],
        }
    )
    table = offers_by_tier(snapshot, policy, top=2)
    assert table.values.tolist() == [
        [gold, "EGGS", 2, 2 / 3],
        [gold, "MILK", 1, 1 / 3],
        [silver, "BEER", 1, 1.0],
        [silver, "EGGS", 1, 1.0],
    ]
