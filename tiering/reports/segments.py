"""Campaign segments: the customer lists operations sends to the CRM, each with a randomised control group.

Tiers say who a customer is; a campaign needs who to contact now and with what. Four named segments
cover the recurring campaigns (keep valuable customers, win back lapsed ones, grow the promising
ones, welcome the new), each customer carrying the benefit configured for their tier.

A campaign's effect is only measurable against customers who were eligible and not contacted, so
every export holds back a random control group. It is drawn by hashing each customer id with the
seed, segment and snapshot date: the same inputs always give the same control group (it can be
rebuilt for the evaluation months later), and a customer's assignment does not depend on the row
order or on who else is in the snapshot.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from features.errors import InputError
from tiering.policy import Policy
from tiering.reports.kpis import at_risk_top_tier
from tiering.risk import GROWTH_OPPORTUNITY
from tiering.table_checks import customer_key, require_columns, require_policy_tiers, require_unique_customers

REQUIRED_COLUMNS = ["customer_id", "tier", "expected_value", "churn_probability", "growth_potential", "as_of"]
EXPORT_COLUMNS = ["customer_id", "tier", "benefit", "expected_value", "churn_probability"]
#: Exported as well when the snapshot has them (a next-order model, personas, offers, reasons).
OPTIONAL_EXPORT_COLUMNS = [
    "p_order_30d",
    "expected_next_order_date",
    "persona",
    "offers",
    "churn_reasons",
    "customer_value_reasons",
]
MAX_CONTROL_SHARE = 0.5
DEFAULT_SEED = 20240101


@dataclass(frozen=True)
class Segment:
    """A named rule picking campaign targets from a snapshot.

    Attributes:
        name: The name operators pass to `export_segment`.
        description: One line for the CLI help and reports.
        select: Snapshot and policy to a boolean mask (aligned with the snapshot) of members.
    """

    name: str
    description: str
    select: Callable[[pd.DataFrame, Policy], pd.Series]


@dataclass(frozen=True, eq=False)
class SegmentExport:
    """One export: who gets the benefit and who is held back.

    Attributes:
        treated: customer_id, tier, benefit, expected_value, churn_probability; most valuable first.
        control: The same columns for the held-out customers (the benefit they would have had).
    """

    segment: str
    policy: str
    as_of: date
    seed: int
    control_share: float
    treated: pd.DataFrame
    control: pd.DataFrame


def _at_risk_high_value(snapshot: pd.DataFrame, policy: Policy) -> pd.Series:
    return customer_key(snapshot).isin(customer_key(at_risk_top_tier(snapshot, policy)))


def _dormant_winback(snapshot: pd.DataFrame, policy: Policy) -> pd.Series:
    inactive = [tier.name for tier in policy.tiers if tier.state == "inactive"]
    return snapshot.tier.isin(["Dormant", *inactive])


def _growth_opportunity(snapshot: pd.DataFrame, policy: Policy) -> pd.Series:
    return (snapshot.growth_potential.astype(float) >= GROWTH_OPPORTUNITY) & (
        snapshot.tier != policy.tier_names[0]
    )


def _new_welcome(snapshot: pd.DataFrame, policy: Policy) -> pd.Series:
    new = [tier.name for tier in policy.tiers if tier.state == "new"]
    return snapshot.tier.isin(["New", *new])


SEGMENTS: dict[str, Segment] = {
    segment.name: segment
    for segment in (
        Segment(
            "at-risk-high-value",
            "Top two value tiers with churn probability of 0.3 or more: keep them.",
            _at_risk_high_value,
        ),
        Segment(
            "dormant-winback",
            "Dormant customers and every inactive state of the policy: win them back.",
            _dormant_winback,
        ),
        Segment(
            "growth-opportunity",
            "Growth potential of 0.5 or more, below the top tier: help them grow.",
            _growth_opportunity,
        ),
        Segment("new-welcome", "New customers: welcome them.", _new_welcome),
    )
}


def segment_members(snapshot: pd.DataFrame, policy: Policy, segment: str) -> pd.DataFrame:
    """The snapshot rows (all columns, original index) that belong to `segment`.

    Args:
        snapshot: One row per customer: customer_id, tier, expected_value, churn_probability,
            growth_potential, as_of.
        policy: The policy the snapshot was cut by.
        segment: One of `SEGMENTS`.

    Raises:
        InputError: the segment is unknown (the message lists the known ones), a column is missing,
            a customer appears twice or a tier is not in the policy.
    """
    if segment not in SEGMENTS:
        raise InputError(f"unknown segment {segment!r} (known: {', '.join(SEGMENTS)})")
    require_columns(snapshot, REQUIRED_COLUMNS, "snapshot")
    require_unique_customers(snapshot, "snapshot")
    require_policy_tiers(snapshot, policy, "snapshot")
    return snapshot[SEGMENTS[segment].select(snapshot, policy).to_numpy()]


def export_segment(
    snapshot: pd.DataFrame,
    policy: Policy,
    segment: str,
    control_share: float = 0.1,
    seed: int = DEFAULT_SEED,
) -> SegmentExport:
    """The treated and control lists of one segment (writing them is the caller's business).

    The control group is round(control_share × members) customers (halves round up), picked by a
    hash of (seed, segment, as_of, customer id); it never overlaps the treated list.

    Args:
        snapshot: One tier snapshot: customer_id, tier, expected_value, churn_probability,
            growth_potential, as_of (one date for all rows; it seeds the control group).
        policy: The policy the snapshot was cut by.
        segment: One of `SEGMENTS`.
        control_share: Share of the segment held out, in [0, 0.5].
        seed: Changes the control group; keep it to rebuild the same one.

    Returns:
        A `SegmentExport`.

    Raises:
        InputError: the segment is unknown (the known ones are listed), `control_share` is out of
            range, a member's tier has no benefit, a column is missing,
            or the snapshot holds no or several dates.
    """
    if not 0 <= control_share <= MAX_CONTROL_SHARE:
        raise InputError(f"control_share: must be between 0 and {MAX_CONTROL_SHARE:g}, got {control_share:g}")
    members = segment_members(snapshot, policy, segment)
    as_of = _snapshot_date(snapshot)
    listed = _with_benefits(members, policy)
    held_out = _control_mask(
        customer_key(listed), _round_half_up(control_share * len(listed)), seed, segment, as_of
    )
    treated = listed[~held_out].reset_index(drop=True)
    control = listed[held_out].reset_index(drop=True)
    return SegmentExport(segment, policy.name, as_of, seed, control_share, treated, control)


def _round_half_up(value: float) -> int:
    """The nearest whole number, halves up (Python's `round` takes halves to even)."""
    return int(np.floor(value + 0.5))


def _snapshot_date(snapshot: pd.DataFrame) -> date:
    dates = pd.to_datetime(snapshot.as_of).dt.date.dropna().unique()
    if len(dates) != 1:
        raise InputError(f"snapshot: as_of must hold one date, got {len(dates)}")
    return dates[0]


def _with_benefits(members: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """The export columns with each tier's benefits from the policy, most valuable first (ties by id)."""
    benefits = {tier.name: tier.benefit_names for tier in policy.tiers}
    missing = sorted(tier for tier in set(members.tier) if not benefits.get(tier))
    if missing:
        raise InputError(
            f"policy {policy.name}: tier {', '.join(missing)} has no benefits to export; "
            "add `benefits:` (name, kind, cost_per_customer) to the tier in the policy file"
        )
    columns = EXPORT_COLUMNS + [
        c for c in OPTIONAL_EXPORT_COLUMNS if c in members and members[c].notna().any()
    ]
    listed = members.assign(benefit=members.tier.map(benefits))[columns]
    order = np.lexsort((customer_key(listed).to_numpy(), -listed.expected_value.astype(float).to_numpy()))
    return listed.iloc[order].reset_index(drop=True)


def _control_mask(keys: pd.Series, size: int, seed: int, segment: str, as_of: date) -> np.ndarray:
    """True for the `size` customers with the smallest hash of (seed, segment, as_of, id)."""
    prefix = f"{seed}|{segment}|{as_of.isoformat()}|"
    draws = pd.Series(
        [int.from_bytes(hashlib.sha256((prefix + key).encode()).digest()[:8], "big") for key in keys],
        dtype="uint64",
    )
    chosen = np.zeros(len(keys), dtype=bool)
    chosen[np.lexsort((keys.to_numpy(), draws.to_numpy()))[:size]] = True
    return chosen
