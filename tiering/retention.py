"""Tier retention (hysteresis): rewards are slow to take away, so one quiet week does not cost a tier.

Grocery baskets are lumpy (holidays, a stocked-up pantry, a week away), so a customer near a cut-off
would flicker between tiers every run if the policy tier were shown as is. Retention smooths that:

- Upgrades apply at once.
- A downgrade takes effect only once the customer's policy tier has been below their kept tier for at
  least `grace_days` without a break; until then they keep the tier and the output says until when.
  Qualifying again (policy tier back at or above the kept tier) resets the clock.
- Lifecycle state tiers (the policy's `immediate_tiers`: New, Dormant, Churned in the lifecycle
  preset) are facts, not rewards: moving into one is immediate, and so is leaving one.
- A previous tier that came from a manual override (`change == "override"`) is not protected: when
  the override expires the customer goes straight to their policy tier, so an override never lasts
  longer than its `expires` date.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from features.errors import InputError
from tiering.policy import Policy
from tiering.table_checks import as_timestamps, customer_key, require_columns, require_unique_customers

OUTPUT_COLUMNS = [
    "customer_id",
    "tier",
    "tier_rank",
    "previous_tier",
    "policy_tier",
    "below_since",
    "change",
    "reason",
]


def apply_retention(
    assigned: pd.DataFrame,
    previous: pd.DataFrame | None,
    as_of: date,
    grace_days: int | None = None,
    *,
    policy: Policy,
) -> pd.DataFrame:
    """Today's tiers after retention, given today's policy tiers and the last snapshot.

    Args:
        assigned: `assign_tiers` output: customer_id, tier, tier_rank, rule.
        previous: The last snapshot (this function's earlier output), or None for the first run:
            customer_id, tier, below_since (date or NaT: the first date the customer's policy tier
            was below their kept tier); `change` if present (to recognise expired overrides).
            Its tier_rank is not read: ranks come from `policy`, the current truth.
        as_of: The date of this run.
        grace_days: Days a downgrade waits; default `policy.grace_days` (30 in both presets).
        policy: The policy that produced `assigned` (tier ranks and `immediate_tiers`).

    Returns:
        One row per customer of `assigned`, in its order: customer_id, tier, tier_rank,
        previous_tier, policy_tier (what the rule alone says), below_since (NaT unless held),
        change ("new", "upgrade", "downgrade", "kept" or "held (grace until YYYY-MM-DD)", the first
        day the downgrade would apply) and reason. Customers only in `previous` are dropped.

    Raises:
        InputError: a column is missing, a customer appears twice, or a tier is not in the policy.
    """
    grace = policy.grace_days if grace_days is None else grace_days
    require_columns(assigned, ["customer_id", "tier", "rule"], "assigned tiers")
    require_unique_customers(assigned, "assigned tiers")
    ranks = policy.ranks
    unknown = assigned.tier[~assigned.tier.isin(list(ranks))]
    if not unknown.empty:
        raise InputError(f"assigned tiers: tier {unknown.iloc[0]!r} is not in policy {policy.name!r}")
    before = _previous(previous, assigned)
    today = pd.Timestamp(as_of).normalize()
    policy_tier = assigned.tier.reset_index(drop=True)
    policy_rank = policy_tier.map(ranks)
    previous_rank = before.previous_tier.map(ranks)
    immediate = (
        policy_tier.isin(policy.immediate_tiers)
        | before.previous_tier.isin(policy.immediate_tiers)
        | before.was_override
    )
    new = previous_rank.isna()
    worse = ~new & (policy_rank > previous_rank)
    since = before.below_since.where(before.below_since.notna(), today)
    waited = (today - since).dt.days >= grace
    held = worse & ~immediate & ~waited
    change = pd.Series(
        np.select(
            [new, held, worse, policy_rank < previous_rank],
            ["new", "held", "downgrade", "upgrade"],
            default="kept",
        ),
        dtype=object,
    )
    if held.any():
        until = _iso_days(since[held] + pd.Timedelta(days=grace))
        change[held] = "held (grace until " + until + ")"
    tier = policy_tier.where(~held, before.previous_tier)
    rule = assigned.rule.reset_index(drop=True)
    reason = _reasons(rule, before, policy_tier, held, worse, since, grace, policy.immediate_tiers)
    return pd.DataFrame(
        {
            "customer_id": assigned.customer_id.to_numpy(),
            "tier": tier.to_numpy(),
            "tier_rank": tier.map(ranks).astype("int64").to_numpy(),
            "previous_tier": before.previous_tier.to_numpy(),
            "policy_tier": policy_tier.to_numpy(),
            "below_since": since.where(held).to_numpy(),
            "change": change.to_numpy(),
            "reason": reason.to_numpy(),
        }
    )


def _previous(previous: pd.DataFrame | None, assigned: pd.DataFrame) -> pd.DataFrame:
    """The snapshot row of each assigned customer (in `assigned`'s order): previous_tier,
    below_since, was_override; missing customers have no previous tier."""
    if previous is None:
        previous = pd.DataFrame({"customer_id": [], "tier": [], "below_since": []})
    require_columns(previous, ["customer_id", "tier", "below_since"], "previous snapshot")
    require_unique_customers(previous, "previous snapshot")
    if "change" in previous.columns:
        was_override = previous["change"].eq("override").to_numpy()
    else:
        was_override = np.zeros(len(previous), dtype=bool)
    snapshot = pd.DataFrame(
        {
            "key": customer_key(previous).to_numpy(),
            "previous_tier": previous.tier.to_numpy(),
            "below_since": as_timestamps(previous.below_since, "previous snapshot: below_since").to_numpy(),
            "was_override": was_override,
        }
    )
    keys = pd.DataFrame({"key": customer_key(assigned).to_numpy()})
    joined = keys.merge(snapshot, on="key", how="left")
    joined["previous_tier"] = joined.previous_tier.astype(object).where(joined.previous_tier.notna(), None)
    joined["below_since"] = pd.to_datetime(joined.below_since)
    joined["was_override"] = joined.was_override.eq(True)
    return joined


def _reasons(
    rule: pd.Series,
    before: pd.DataFrame,
    policy_tier: pd.Series,
    held: pd.Series,
    worse: pd.Series,
    since: pd.Series,
    grace: int,
    immediate_tiers: tuple[str, ...],
) -> pd.Series:
    """Why each customer has their tier: the rule, prefixed by what retention did to it.

    Each prefix is built only for the rows it applies to (the first matching case wins): formatting
    dates and joining strings for a million customers who simply kept their tier is most of the cost.
    """
    cases = [
        held,
        worse & policy_tier.isin(immediate_tiers),
        worse & before.was_override,
        worse & before.previous_tier.isin(immediate_tiers),
        worse,
    ]
    case = np.select(cases, range(1, len(cases) + 1), default=0)
    reason = rule.astype(object)
    for number in np.unique(case[case > 0]):
        rows = case == number
        previous = before.previous_tier[rows].fillna("").astype(object)
        if number == 1:
            dates = _iso_days(since[rows])
            prefix = (
                "keeps "
                + previous
                + f" during the {grace}-day grace (below it since "
                + dates
                + "); the rule says "
                + policy_tier[rows]
                + ": "
            )
        elif number == 2:
            prefix = policy_tier[rows] + " is a lifecycle state, applied at once: "
        elif number == 3:
            prefix = pd.Series("override ended: ", index=previous.index, dtype=object)
        elif number == 4:
            prefix = previous + " is a lifecycle state, left at once: "
        else:
            dates = _iso_days(since[rows])
            prefix = "below " + previous + " since " + dates + f" (grace of {grace} days over): "
        reason[rows] = prefix.astype(object) + reason[rows]
    return reason


def _iso_days(days: pd.Series) -> pd.Series:
    """Dates as "YYYY-MM-DD" ("" for NaT): `.dt.strftime("%Y-%m-%d").fillna("")`, ~20x faster."""
    if days.dt.tz is not None:
        return days.dt.strftime("%Y-%m-%d").fillna("")
    text = np.datetime_as_string(days.to_numpy().astype("datetime64[D]"), unit="D").astype(object)
    text[days.isna().to_numpy()] = ""
    return pd.Series(text, index=days.index, dtype=object)
