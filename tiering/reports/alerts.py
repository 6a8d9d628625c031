"""Alert rules on tier snapshots: the few conditions an operator must hear about without opening a report.

A snapshot of tens of thousands of customers is read by nobody line by line; what operations needs is
to be told when something changed that costs money: valuable customers about to leave, a growing pile
of dormant customers, or a tier that suddenly grew or shrank (a real shift, or a broken model or
feature). Each condition is a typed rule with defaults that work out of the box and can be tuned in a
YAML file, validated like a tier policy so a typo names the field instead of silencing an alert.

`evaluate_alerts` turns two snapshots into plain JSON-ready records (a job log, a chat message or an
exit code can all use them); a quiet day gives an empty list.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from features.errors import InputError
from features.files import read_yaml
from tiering.policy import Policy
from tiering.reports.kpis import at_risk_top_tier, tier_summary, top_tiers
from tiering.risk import AT_RISK_CHURN

Severity = Literal["warning", "critical"]
#: Customer ids listed in one alert; the count covers them all.
MAX_LISTED = 50
#: Share moves are compared in percentage points rounded to this many decimals, so 20% -> 25% is 5.
POINTS_DECIMALS = 6


class _Rule(BaseModel):
    """An alert rule: its settings, and `findings(current, previous, policy)` returning one
    {"message", "details"} mapping per breach (none when all is well)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class TopTierAtRisk(_Rule):
    """Fires when more than `max_customers` customers of the best value tiers are at risk of churning.

    Attributes:
        threshold: Lowest churn probability that counts as at risk, in [0, 1].
        top_ranks: How many value tiers, from the best, count as top tiers (2: Platinum and Gold).
        max_customers: At-risk top-tier customers tolerated without an alert (0: alert on any).
        severity: Losing the most valuable customers costs the most, so critical by default.
    """

    rule: Literal["top_tier_at_risk"] = "top_tier_at_risk"
    threshold: float = Field(AT_RISK_CHURN, ge=0, le=1)
    top_ranks: int = Field(2, ge=1)
    max_customers: int = Field(0, ge=0)
    severity: Severity = "critical"

    def findings(self, current: pd.DataFrame, previous: pd.DataFrame | None, policy: Policy) -> list[dict]:
        at_risk = at_risk_top_tier(current, policy, self.threshold, self.top_ranks)
        if len(at_risk) <= self.max_customers:
            return []
        tiers = top_tiers(policy, self.top_ranks)
        value = float(at_risk.expected_value.sum())
        ids = [str(customer) for customer in at_risk.customer_id.iloc[:MAX_LISTED]]
        truncated = len(at_risk) > len(ids)
        listed = f"the {len(ids)} most valuable listed" if truncated else "listed most valuable first"
        message = (
            f"{len(at_risk):,} {' or '.join(tiers)} customer{'s are' if len(at_risk) > 1 else ' is'} at "
            f"risk of churning (churn probability {self.threshold * 100:g}% or more; tolerated: "
            f"{self.max_customers:,}). Together they hold {value:,.2f} of predicted value; reach out "
            f"before they leave ({listed})."
        )
        details = {
            "tiers": tiers,
            "customers": len(at_risk),
            "max_customers": self.max_customers,
            "threshold": self.threshold,
            "predicted_value": value,
            "customer_ids": ids,
            "customer_ids_truncated": truncated,
        }
        return [{"message": message, "details": details}]


class DormantShare(_Rule):
    """Fires when one tier (Dormant by default) holds more than `max_share` of the customers.

    Skipped when the policy has no tier of that name (the rfmp preset has no Dormant).

    Attributes:
        tier: The tier to watch.
        max_share: Largest tolerated share of all customers, in [0, 1].
        severity: A slow trend rather than an emergency, so a warning by default.
    """

    rule: Literal["dormant_share"] = "dormant_share"
    tier: str = Field("Dormant", min_length=1)
    max_share: float = Field(0.25, ge=0, le=1)
    severity: Severity = "warning"

    def findings(self, current: pd.DataFrame, previous: pd.DataFrame | None, policy: Policy) -> list[dict]:
        if self.tier not in policy.tier_names:
            return []
        summary = tier_summary(current, policy)
        customers, share = int(summary.customers[self.tier]), float(summary.share[self.tier])
        if share <= self.max_share:
            return []
        message = (
            f"{self.tier} holds {share:.1%} of customers ({customers:,} of {len(current):,}), above the "
            f"limit of {self.max_share:.1%}."
        )
        details = {
            "tier": self.tier,
            "customers": customers,
            "total_customers": len(current),
            "share": share,
            "max_share": self.max_share,
        }
        return [{"message": message, "details": details}]


class ShareShift(_Rule):
    """Fires, once per tier, when a tier's share of customers moved more than `max_points` since the
    previous snapshot (skipped without one).

    Attributes:
        max_points: Largest tolerated move, in percentage points (5: 20% -> 25% is fine, 26% is not).
        severity: A shift can be real or a data problem; a warning to look into by default.
    """

    rule: Literal["share_shift"] = "share_shift"
    max_points: float = Field(5.0, gt=0, le=100)
    severity: Severity = "warning"

    def findings(self, current: pd.DataFrame, previous: pd.DataFrame | None, policy: Policy) -> list[dict]:
        if previous is None:
            return []
        now, before = tier_summary(current, policy).share, tier_summary(previous, policy).share
        points = ((now - before) * 100).round(POINTS_DECIMALS)
        findings = []
        for tier in points.index[points.abs() > self.max_points]:
            move = float(points[tier])
            message = (
                f"{tier} went from {before[tier]:.1%} to {now[tier]:.1%} of customers ({move:+.1f} points "
                f"since the previous snapshot; limit {self.max_points:g} points). Check the models' inputs and "
                f"the policy before acting on it."
            )
            details = {
                "tier": tier,
                "previous_share": float(before[tier]),
                "share": float(now[tier]),
                "points": move,
                "max_points": self.max_points,
            }
            findings.append({"message": message, "details": details})
        return findings


AlertRule = TopTierAtRisk | DormantShare | ShareShift
RULES: dict[str, type[_Rule]] = {
    "top_tier_at_risk": TopTierAtRisk,
    "dormant_share": DormantShare,
    "share_shift": ShareShift,
}
DEFAULT_RULES: tuple[AlertRule, ...] = (TopTierAtRisk(), DormantShare(), ShareShift())


def evaluate_alerts(
    current: pd.DataFrame,
    previous: pd.DataFrame | None,
    policy: Policy,
    rules: tuple[AlertRule, ...] | list[AlertRule] = DEFAULT_RULES,
    *,
    as_of: date,
) -> list[dict[str, Any]]:
    """The alerts `rules` raise on today's snapshot, in rule order; an empty list when all is quiet.

    Args:
        current: Today's snapshot: customer_id, tier, expected_value, churn_probability.
        previous: The previous snapshot (same columns, same policy), or None on the first run.
        policy: The policy both snapshots were cut by.
        rules: The rules to check (default `DEFAULT_RULES`; see `load_alert_rules`).
        as_of: The date of today's snapshot, stamped on every record.

    Returns:
        JSON-serialisable records: rule (e.g. "top_tier_at_risk"), severity ("warning" or
        "critical"), message (one or two sentences for an operator), as_of (ISO date), policy (its
        name) and details (the numbers behind the message and, where it applies, customer ids).

    Raises:
        InputError: a snapshot lacks a column, repeats a customer or holds a tier not in the policy.
    """
    day = pd.Timestamp(as_of).date().isoformat()
    return [
        {"rule": rule.rule, "severity": rule.severity, **finding, "as_of": day, "policy": policy.name}
        for rule in rules
        for finding in rule.findings(current, previous, policy)
    ]


def parse_alert_rules(data: Any, source: str = "alert rules") -> tuple[AlertRule, ...]:
    """Validate parsed YAML into rules: a list of mappings (or `{rules: [...]}`), each naming its kind
    in `rule` (top_tier_at_risk, dormant_share, share_shift) and overriding any default field.

    Raises:
        InputError: naming `source` and the bad field, e.g. `rules[0].threshold: Input should be
            less than or equal to 1, got 1.5`.
    """
    if isinstance(data, dict) and set(data) == {"rules"}:
        data = data["rules"]
    if data is None:
        return ()
    if not isinstance(data, list):
        raise InputError(f"{source}: expected a list of rules, each a mapping with a `rule` field")
    return tuple(_parse_rule(item, f"rules[{index}]", source) for index, item in enumerate(data))


def load_alert_rules(path: str | Path) -> tuple[AlertRule, ...]:
    """Alert rules from a YAML file (see `parse_alert_rules`); an empty file means no rules.

    Example:
        ```yaml
        rules:
          - {rule: top_tier_at_risk, threshold: 0.4, max_customers: 10}
          - {rule: share_shift, max_points: 3, severity: critical}
        ```

    Raises:
        InputError: the file is missing or not YAML, or a rule is invalid (the message names the file,
            the rule's position and the field).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"{path}: no such alert rules file")
    return parse_alert_rules(read_yaml(path), source=str(path))


def _parse_rule(item: Any, at: str, source: str) -> AlertRule:
    known = ", ".join(RULES)
    if not isinstance(item, dict):
        raise InputError(f"{source}: {at}: expected a mapping with a `rule` field, got {type(item).__name__}")
    if "rule" not in item:
        raise InputError(f"{source}: {at}.rule: missing (one of {known})")
    if item["rule"] not in RULES:
        raise InputError(f"{source}: {at}.rule: unknown rule {item['rule']!r} (one of {known})")
    model = RULES[item["rule"]]
    try:
        return model.model_validate(item)
    except ValidationError as exc:
        problems = "; ".join(_describe(error, at, model) for error in exc.errors())
        raise InputError(f"{source}: invalid alert rule: {problems}") from None


def _describe(error: Any, at: str, model: type[_Rule]) -> str:
    """One pydantic error as `rules[i].field: message`, with the allowed fields for an unknown one."""
    path = ".".join([at, *(str(part) for part in error["loc"])])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = f"unknown field (allowed: {', '.join(model.model_fields)})"
    elif error["type"] != "missing" and "input" in error:
        message = f"{message}, got {error['input']!r}"
    return f"{path}: {message}"
