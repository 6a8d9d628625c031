"""Alerts: they fire on the situations operators care about, stay silent otherwise, and bad rules say why."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from features.errors import InputError
from tiering import load_policy
from tiering.reports import (
    DEFAULT_RULES,
    DormantShare,
    ShareShift,
    TopTierAtRisk,
    evaluate_alerts,
    load_alert_rules,
    parse_alert_rules,
)

LIFECYCLE = load_policy("lifecycle")
RFMP = load_policy("rfmp")
AS_OF = date(2024, 3, 1)
QUIET = {"Platinum": 50, "Gold": 150, "Silver": 600, "Dormant": 100, "Churned": 100}


def population(counts: dict[str, int], at_risk: dict[str, int] | None = None) -> pd.DataFrame:
    """`counts` customers per tier (ids like "Gold-7", value falling with the id), churn 0.05, except the
    first `at_risk[tier]` of a tier at 0.6."""
    frames = []
    for tier, count in counts.items():
        churn = [0.6 if i < (at_risk or {}).get(tier, 0) else 0.05 for i in range(count)]
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": [f"{tier}-{i}" for i in range(count)],
                    "tier": tier,
                    "expected_value": [1000.0 - i for i in range(count)],
                    "churn_probability": churn,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def alerts(current, previous, policy=LIFECYCLE, rules=DEFAULT_RULES) -> list[dict]:
    return evaluate_alerts(current, previous, policy, rules, as_of=AS_OF)


def test_the_defaults_are_the_documented_rules():
    top, dormant, shift = DEFAULT_RULES
    assert (top.threshold, top.top_ranks, top.max_customers, top.severity) == (0.3, 2, 0, "critical")
    assert (dormant.tier, dormant.max_share, dormant.severity) == ("Dormant", 0.25, "warning")
    assert (shift.max_points, shift.severity) == (5.0, "warning")


def test_a_quiet_day_raises_no_alert():
    assert alerts(population(QUIET), population(QUIET)) == []
    assert alerts(population(QUIET), None) == []


def test_a_loud_day_raises_each_alert_with_its_numbers():
    previous = population(QUIET)
    current = population({**QUIET, "Silver": 300, "Dormant": 400}, at_risk={"Platinum": 50})
    records = alerts(current, previous)
    assert json.loads(json.dumps(records)) == records
    assert [(r["rule"], r["severity"]) for r in records] == [
        ("top_tier_at_risk", "critical"),
        ("dormant_share", "warning"),
        ("share_shift", "warning"),
        ("share_shift", "warning"),
    ]
    assert all(r["as_of"] == "2024-03-01" and r["policy"] == "lifecycle" for r in records)
    top, dormant, silver, dormant_shift = records
    assert top["details"]["customers"] == 50 and top["details"]["tiers"] == ["Platinum", "Gold"]
    assert top["details"]["customer_ids"] == [f"Platinum-{i}" for i in range(50)]
    assert top["message"].startswith("50 Platinum or Gold customers are at risk of churning")
    assert dormant["details"]["share"] == 0.4
    assert dormant["message"] == "Dormant holds 40.0% of customers (400 of 1,000), above the limit of 25.0%."
    assert (silver["details"]["tier"], silver["details"]["points"]) == ("Silver", -30.0)
    assert (dormant_shift["details"]["tier"], dormant_shift["details"]["points"]) == ("Dormant", 30.0)
    assert dormant_shift["message"].startswith("Dormant went from 10.0% to 40.0% of customers (+30.0 points")


def test_a_tier_share_jumping_ten_points_fires_and_five_points_does_not():
    previous = population({"Platinum": 50, "Gold": 200, "Silver": 750})
    five = population({"Platinum": 50, "Gold": 250, "Silver": 700})
    ten = population({"Platinum": 50, "Gold": 300, "Silver": 650})
    assert alerts(five, previous, rules=[ShareShift()]) == []
    records = alerts(ten, previous, rules=[ShareShift()])
    assert [(r["details"]["tier"], r["details"]["points"]) for r in records] == [
        ("Gold", 10.0),
        ("Silver", -10.0),
    ]


def test_top_tier_alerts_tolerate_max_customers_and_list_at_most_fifty_most_valuable_first():
    current = population({"Platinum": 40, "Gold": 100, "Silver": 860}, at_risk={"Platinum": 30, "Gold": 30})
    assert alerts(current, None, rules=[TopTierAtRisk(max_customers=60)]) == []
    (record,) = alerts(current, None, rules=[TopTierAtRisk(max_customers=59, severity="warning")])
    assert record["severity"] == "warning" and record["details"]["customers"] == 60
    ids = record["details"]["customer_ids"]
    assert len(ids) == 50 and record["details"]["customer_ids_truncated"]
    assert ids[:3] == ["Gold-0", "Platinum-0", "Gold-1"] and "Gold-29" not in ids


def test_rfmp_has_no_dormant_tier_so_that_rule_is_skipped_and_diamond_counts_as_top():
    current = population({"Diamond": 100, "Gold": 200, "Silver": 400, "Bronze": 300}, at_risk={"Diamond": 3})
    (record,) = alerts(current, current, policy=RFMP)
    assert record["rule"] == "top_tier_at_risk" and record["details"]["tiers"] == ["Diamond", "Gold"]
    assert alerts(current, current, RFMP, [DormantShare(tier="Bronze", max_share=0.2)])[0]["details"][
        "share"
    ] == pytest.approx(0.3)


def test_alert_rules_load_from_yaml(tmp_path: Path):
    path = tmp_path / "alerts.yaml"
    path.write_text(
        "rules:\n"
        "  - {rule: top_tier_at_risk, threshold: 0.4, max_customers: 10}\n"
        "  - {rule: dormant_share}\n"
        "  - {rule: share_shift, max_points: 3, severity: critical}\n"
    )
    assert load_alert_rules(path) == (
        TopTierAtRisk(threshold=0.4, max_customers=10),
        DormantShare(),
        ShareShift(max_points=3, severity="critical"),
    )
    assert parse_alert_rules([rule.model_dump() for rule in DEFAULT_RULES]) == DEFAULT_RULES


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "- {rule: top_tier_at_risk, threshold: 1.5}",
            r"rules\[0\]\.threshold: .*less than or equal to 1, got 1\.5",
        ),
        (
            "- {rule: dormant_share}\n- {rule: dormant_share, max_shar: 0.2}",
            r"rules\[1\]\.max_shar: unknown field \(allowed: .*max_share",
        ),
        (
            "- {rule: share_shift, severity: urgent}",
            r"rules\[0\]\.severity: .*'warning' or 'critical', got 'urgent'",
        ),
        ("- {rule: top_tier_at_risk, top_ranks: 0}", r"rules\[0\]\.top_ranks: .*greater than or equal to 1"),
        (
            "- {rule: panic}",
            r"rules\[0\]\.rule: unknown rule 'panic' \(one of top_tier_at_risk, dormant_share, share_shift\)",
        ),
        ("- {threshold: 0.3}", r"rules\[0\]\.rule: missing"),
        ("rule: share_shift", r"expected a list of rules"),
        ("rules: [", r"not valid YAML"),
    ],
)
def test_bad_alert_rules_name_the_file_and_the_field(tmp_path: Path, text: str, message: str):
    path = tmp_path / "alerts.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as error:
        load_alert_rules(path)
    assert str(path) in str(error.value)


def test_a_missing_rules_file_is_an_input_error(tmp_path: Path):
    with pytest.raises(InputError, match="no such alert rules file"):
        load_alert_rules(tmp_path / "nope.yaml")
