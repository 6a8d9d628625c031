"""Tier KPIs: the numbers operations reads off each tier snapshot before deciding anything.

A tier policy is only worth its rewards if the tiers hold the value they promise, stay reasonably
stable, and the valuable customers are not quietly leaving. These functions answer that from the
snapshots `tierwise score` writes (one frame in, one frame out; no files, no clock), so the report,
the alerts and a notebook all count the same way:

- `tier_summary`: size, predicted (and optionally actual) value and churn risk per tier;
- `migration_matrix` and `flow_rates`: who moved between two snapshots, and in which direction;
- `at_risk_top_tier`: the valuable customers likely to churn, most valuable first.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.errors import InputError
from tiering.policy import Policy
from tiering.risk import AT_RISK_CHURN
from tiering.table_checks import customer_key, require_columns, require_policy_tiers, require_unique_customers

NEW_ROW = "(new)"
GONE_COLUMN = "(gone)"
RISK_BANDS = {
    "risk_lt_10": (0.0, 0.1),
    "risk_10_30": (0.1, 0.3),
    "risk_30_50": (0.3, 0.5),
    "risk_ge_50": (0.5, np.inf),
}
FLOW_COLUMNS = ["customers", "stayed", "up", "down", "left"]


def tier_summary(
    snapshot: pd.DataFrame, policy: Policy, actual_spend: pd.Series | None = None
) -> pd.DataFrame:
    """Size, value and churn risk of each tier of `policy`.

    Args:
        snapshot: One row per customer: customer_id, tier, expected_value, churn_probability.
        policy: The policy whose tiers the snapshot holds; it fixes the rows and their order.
        actual_spend: What each customer really spent over the past horizon, indexed by customer_id
            (ids compared as strings). Customers of the snapshot missing from it spent 0; customers
            missing from the snapshot are ignored.

    Returns:
        One row per tier in policy order (index `tier`; empty tiers included with 0 customers):
        tier_rank, customers, share (of customers), predicted_value_total, predicted_value_share,
        predicted_arpu (mean expected_value), with `actual_spend` also actual_spend_total,
        actual_spend_share and actual_arpu, then mean_churn_probability and the number of
        customers per churn-risk band: risk_lt_10 (below 0.1), risk_10_30, risk_30_50 and
        risk_ge_50 (0.5 or more), then the tier's `benefits` (one line) and `benefit_cost_total`
        (customers × the benefits' cost per customer). Shares are 0 when there is nothing to share;
        means of an empty tier are NaN.

    Raises:
        InputError: a column is missing, a customer appears twice (in the snapshot or in
            `actual_spend`), or a tier is not in the policy.
    """
    require_columns(snapshot, ["customer_id", "tier", "expected_value", "churn_probability"], "snapshot")
    require_unique_customers(snapshot, "snapshot")
    require_policy_tiers(snapshot, policy, "snapshot")
    data = pd.DataFrame(
        {
            "tier": pd.Categorical(snapshot.tier, categories=policy.tier_names),
            "value": snapshot.expected_value.astype(float).to_numpy(),
            "churn": snapshot.churn_probability.astype(float).to_numpy(),
        }
    )
    columns = {"customers": ("value", "size"), "predicted_value_total": ("value", "sum")}
    if actual_spend is not None:
        data["spend"] = _spend_per_customer(snapshot, actual_spend)
        columns["actual_spend_total"] = ("spend", "sum")
    grouped = data.groupby("tier", observed=False)
    summary = grouped.agg(**columns)
    summary.insert(0, "tier_rank", range(len(policy.tiers)))
    summary.insert(2, "share", _shares(summary.customers))
    summary.insert(4, "predicted_value_share", _shares(summary.predicted_value_total))
    summary.insert(5, "predicted_arpu", grouped.value.mean())
    if actual_spend is not None:
        summary["actual_spend_share"] = _shares(summary.actual_spend_total)
        summary["actual_arpu"] = grouped.spend.mean()
    summary["mean_churn_probability"] = grouped.churn.mean()
    for column, (low, high) in RISK_BANDS.items():
        in_band = data.churn.ge(low) & data.churn.lt(high)
        summary[column] = in_band.groupby(data.tier, observed=False).sum().astype("int64")
    summary["customers"] = summary.customers.astype("int64")
    summary["benefits"] = [tier.benefit_names for tier in policy.tiers]
    summary["benefit_cost_total"] = summary.customers.to_numpy() * [
        tier.benefit_cost for tier in policy.tiers
    ]
    summary.index = pd.Index(policy.tier_names, name="tier")
    return summary


def migration_matrix(previous: pd.DataFrame, current: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """How many customers went from each tier to each tier between two snapshots.

    Args:
        previous: The earlier snapshot: customer_id, tier.
        current: The later snapshot: customer_id, tier. Customer ids are compared as strings.
        policy: The policy both snapshots were cut by.

    Returns:
        Counts (int64): rows are the previous tier (index `previous_tier`, policy order, then
        "(new)" for customers only in `current`), columns the current tier (policy order, then
        "(gone)" for customers only in `previous`). Each tier's row sums to its size in `previous`
        and each tier's column to its size in `current`.

    Raises:
        InputError: a column is missing, a customer appears twice, or a tier is not in the policy.
    """
    for frame, what in ((previous, "previous snapshot"), (current, "current snapshot")):
        require_columns(frame, ["customer_id", "tier"], what)
        require_unique_customers(frame, what)
        require_policy_tiers(frame, policy, what)
    before = pd.DataFrame(
        {"key": customer_key(previous).to_numpy(), "previous_tier": previous.tier.to_numpy()}
    )
    after = pd.DataFrame({"key": customer_key(current).to_numpy(), "tier": current.tier.to_numpy()})
    joined = before.merge(after, on="key", how="outer")
    rows = [*policy.tier_names, NEW_ROW]
    columns = [*policy.tier_names, GONE_COLUMN]
    matrix = pd.crosstab(
        pd.Categorical(joined.previous_tier.fillna(NEW_ROW), categories=rows),
        pd.Categorical(joined.tier.fillna(GONE_COLUMN), categories=columns),
        dropna=False,
    )
    matrix = matrix.reindex(index=rows, columns=columns, fill_value=0).astype("int64")
    matrix.index.name, matrix.columns.name = "previous_tier", "tier"
    return matrix


def flow_rates(matrix: pd.DataFrame) -> pd.DataFrame:
    """Per previous tier, the share of its customers that stayed, moved up, moved down or left.

    "Up" and "down" follow the policy order of the matrix (a better `tier_rank` is up), so a
    Silver customer who goes Dormant moved down and a New customer who becomes Gold moved up.

    Args:
        matrix: `migration_matrix` output.

    Returns:
        One row per tier (the "(new)" row is left out): customers (the tier's size in the previous
        snapshot), then stayed, up, down and left (gone from the current snapshot) as shares that
        add up to 1; NaN for a tier that had no customers.

    Raises:
        InputError: `matrix` is not shaped like `migration_matrix` output.
    """
    tiers = [name for name in matrix.columns if name != GONE_COLUMN]
    if GONE_COLUMN not in matrix.columns or [name for name in matrix.index if name != NEW_ROW] != tiers:
        raise InputError(
            "flow_rates: expected a migration_matrix: the same tiers as rows and columns, "
            f"plus a {NEW_ROW!r} row and a {GONE_COLUMN!r} column"
        )
    counts = matrix.loc[tiers, tiers].to_numpy()
    rank = np.arange(len(tiers))
    moved_up = rank[None, :] < rank[:, None]
    moved_down = rank[None, :] > rank[:, None]
    customers = matrix.loc[tiers].sum(axis=1).to_numpy()
    flows = pd.DataFrame(
        {
            "customers": customers.astype("int64"),
            "stayed": np.diag(counts),
            "up": (counts * moved_up).sum(axis=1),
            "down": (counts * moved_down).sum(axis=1),
            "left": matrix.loc[tiers, GONE_COLUMN].to_numpy(),
        },
        index=pd.Index(tiers, name="previous_tier"),
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        for column in FLOW_COLUMNS[1:]:
            flows[column] = flows[column].to_numpy() / np.where(customers > 0, customers, np.nan)
    return flows


def at_risk_top_tier(
    snapshot: pd.DataFrame, policy: Policy, churn_threshold: float = AT_RISK_CHURN, top_ranks: int = 2
) -> pd.DataFrame:
    """Customers of the best value tiers who are likely to churn, most valuable first.

    Args:
        snapshot: customer_id, tier, expected_value, churn_probability (other columns are kept).
        policy: Its first `top_ranks` value tiers count as top tiers (lifecycle: Platinum and
            Gold; rfmp: Diamond and Gold). Lifecycle state tiers never count.
        churn_threshold: The lowest churn probability that counts as at risk, in [0, 1].
        top_ranks: How many value tiers, from the best, to look at (at least 1).

    Returns:
        The matching rows of `snapshot` with all its columns, sorted by expected_value descending
        (ties by customer_id), with a fresh index.

    Raises:
        InputError: a column is missing, or `churn_threshold` or `top_ranks` is out of range.
    """
    require_columns(snapshot, ["customer_id", "tier", "expected_value", "churn_probability"], "snapshot")
    if not 0 <= churn_threshold <= 1:
        raise InputError(f"churn_threshold: must be between 0 and 1, got {churn_threshold:g}")
    if top_ranks < 1:
        raise InputError(f"top_ranks: must be at least 1, got {top_ranks}")
    chosen = snapshot.tier.isin(top_tiers(policy, top_ranks)) & (
        snapshot.churn_probability.astype(float) >= churn_threshold
    )
    at_risk = snapshot[chosen.to_numpy()]
    order = np.lexsort((customer_key(at_risk).to_numpy(), -at_risk.expected_value.astype(float).to_numpy()))
    return at_risk.iloc[order].reset_index(drop=True)


def top_tiers(policy: Policy, top_ranks: int) -> list[str]:
    """The names of the best `top_ranks` value tiers of `policy`."""
    return [tier.name for tier in policy.value_tiers[:top_ranks]]


def _shares(values: pd.Series) -> pd.Series:
    total = values.sum()
    return values / total if total else values * 0.0


def _spend_per_customer(snapshot: pd.DataFrame, actual_spend: pd.Series) -> np.ndarray:
    """Each snapshot customer's actual spend (0 when absent), in the snapshot's row order."""
    spend = pd.Series(actual_spend.to_numpy(dtype=float), index=actual_spend.index.astype(str))
    if spend.index.duplicated().any():
        raise InputError(f"actual_spend: customer {spend.index[spend.index.duplicated()][0]} appears twice")
    return spend.reindex(customer_key(snapshot).to_numpy()).fillna(0.0).to_numpy()


def persona_by_tier(snapshot: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """Customers per persona (rows, largest first) and tier (columns, policy order), with each persona's
    total and mean predicted value; empty when the snapshot has no personas.

    Args:
        snapshot: customer_id, tier, persona (null before personas are fitted), expected_value.
    """
    if "persona" not in snapshot or snapshot["persona"].isna().all():
        return pd.DataFrame()
    counts = pd.crosstab(snapshot["persona"], snapshot["tier"]).reindex(
        columns=policy.tier_names, fill_value=0
    )
    counts["customers"] = counts.sum(axis=1)
    counts["mean_expected_value"] = snapshot.groupby("persona")["expected_value"].mean()
    return counts.sort_values("customers", ascending=False)


def offers_by_tier(snapshot: pd.DataFrame, policy: Policy, top: int = 5) -> pd.DataFrame:
    """Per tier (policy order), the categories offered to most of its customers: tier, item, customers
    offered it, share of the tier; empty when the snapshot has no offers.

    Args:
        snapshot: customer_id, tier, offers (" | "-joined categories, null for none).
    """
    if "offers" not in snapshot or snapshot["offers"].isna().all():
        return pd.DataFrame(columns=["tier", "item", "customers", "share"])
    items = (
        snapshot[["tier", "offers"]].dropna().assign(item=lambda f: f.offers.str.split(" | ", regex=False))
    )
    counts = items.explode("item").groupby(["tier", "item"]).size().rename("customers").reset_index()
    counts["share"] = counts.customers / counts.tier.map(snapshot.tier.value_counts())
    counts["order"] = counts.tier.map(policy.ranks)
    counts = counts.sort_values(["order", "customers", "item"], ascending=[True, False, True])
    return counts.groupby("tier", sort=False).head(top).drop(columns="order").reset_index(drop=True)
