"""Assign each customer the tier a policy gives them today, with a short reason staff can read.

This is the one implementation of the tier rules: the online service calls it for one customer and
batch scoring for all of them, so both always agree. It is pure (a table in, a new table out) and
knows nothing of models: the caller passes predictions as columns.

Predictive mode (the default) ranks customers by what the models expect; classic mode by what they
did, for comparison and for data without trained models:

| input            | predictive                    | classic                          |
|------------------|-------------------------------|----------------------------------|
| value / monetary | `expected_value`              | `spend_365d`                     |
| recency          | `1 - churn_probability`       | `days_since_last_order` (fewer = better) |
| frequency        | `orders_365d`                 | `orders_365d`                    |
| potential        | `growth_potential`            | `spend_trend_90d`                |

In predictive mode the RFMP recency component is the percentile rank of `1 - churn_probability`
alone, not a blend with days since the last order: the churn model already reads recency (and the
customer's own rhythm, so 20 days is late for a weekly shopper and early for a monthly one), and
blending would count recency twice. Lifecycle states and the value tiers' recency windows always use
`days_since_last_order`: they are facts, not predictions. There is no frequency model, so frequency
is `orders_365d` in both modes.

Potential (RFMP's P) is the growth room of active customers: `growth_potential` is answered only for
customers with an order in the model's horizon (`training.labels`), and a customer without it
(lapsed) earns 0 from P; the active customers' P is their percentile rank among themselves. So P
lifts an active customer with room to grow, and never lifts a lapsed one (the old growth label, a
reactivation score, rated Dormant customers above Platinum ones).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from features.errors import InputError
from tiering.policy import Policy, Tier
from tiering.table_checks import require_columns, require_unique_customers

VALUE_COLUMN = {False: "expected_value", True: "spend_365d"}
SCORE_LABEL = {
    ("value", False): "predicted value",
    ("value", True): "365-day spend",
    ("rfmp", False): "RFMP score",
    ("rfmp", True): "RFMP score (history)",
}
OUTPUT_COLUMNS = ["customer_id", "tier", "tier_rank", "score", "rule"]
#: Input columns that may be missing: no growth potential for a customer who is not active (P = 0).
OPTIONAL_COLUMNS = ("growth_potential",)


def required_columns(policy: Policy, classic: bool = False) -> list[str]:
    """The input columns `assign_tiers` reads for this policy and mode."""
    columns = ["customer_id", "days_since_last_order"]
    if any(tier.state == "new" for tier in policy.tiers):
        columns.append("tenure_days")
    if policy.scoring == "value":
        columns.append(VALUE_COLUMN[classic])
    elif classic:
        columns += ["orders_365d", "spend_365d", "spend_trend_90d"]
    else:
        columns += ["churn_probability", "orders_365d", "expected_value", "growth_potential"]
    return columns


def percentile(values: pd.Series) -> pd.Series:
    """Percentile rank in [0, 1] among the known values: 0 for the lowest, 1 for the highest, ties
    share their mean rank.

    A single known value gets 1. A missing value gets 0: a customer without the component (no growth
    potential, because not active) earns nothing from it and moves no one else's rank.
    """
    return percentile_of_ranks(values.rank(method="average"), int(values.notna().sum()))


def percentile_of_ranks(ranks: pd.Series, count: int) -> pd.Series:
    """`percentile` from the values' average ranks (1 = lowest, ties share their mean rank, NaN for a
    missing value) among `count` known values: so an engine that ranks the values elsewhere (Spark,
    over customers no one process holds) gets the same percentiles."""
    if count <= 1:
        return pd.Series(np.where(ranks.notna(), 1.0, 0.0), index=ranks.index)
    return ((ranks - 1) / (count - 1)).fillna(0.0)


def raw_rfmp_components(frame: pd.DataFrame, classic: bool = False) -> pd.DataFrame:
    """Recency, frequency, monetary and potential before ranking (higher = better).

    Args:
        frame: Predictive mode: churn_probability, orders_365d, expected_value, growth_potential
            (NaN for customers it does not answer). Classic mode: days_since_last_order, orders_365d, spend_365d, spend_trend_90d.
        classic: Use history only (see the module docstring).
    """
    if classic:
        raw = {
            "recency": -frame.days_since_last_order,
            "frequency": frame.orders_365d,
            "monetary": frame.spend_365d,
            "potential": frame.spend_trend_90d,
        }
    else:
        raw = {
            "recency": 1 - frame.churn_probability,
            "frequency": frame.orders_365d,
            "monetary": frame.expected_value,
            "potential": frame.growth_potential,
        }
    return pd.DataFrame({name: values.astype(float) for name, values in raw.items()})


def rfmp_components(frame: pd.DataFrame, classic: bool = False) -> pd.DataFrame:
    """The RFMP components (`raw_rfmp_components`), each a percentile rank in [0, 1] over `frame`."""
    return raw_rfmp_components(frame, classic).apply(percentile)


def policy_scores(frame: pd.DataFrame, policy: Policy, classic: bool = False) -> pd.Series:
    """The score value tiers are cut by: the value itself, or the weighted RFMP score in [0, 1].

    RFMP percentile ranks are taken over every customer in `frame`.
    """
    if policy.scoring == "value":
        return frame[VALUE_COLUMN[classic]].astype(float)
    return rfmp_score(rfmp_components(frame, classic), policy)


def rfmp_score(components: pd.DataFrame, policy: Policy) -> pd.Series:
    """The weighted RFMP score from the components' percentile ranks (recency, frequency, monetary,
    potential), however they were ranked."""
    return sum(weight * components[name] for name, weight in policy.rfmp_weights.as_dict().items())


def share_floors(policy: Policy, count: int, smallest: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """The score each share band of `policy` starts at, best band first, over the `count` customers
    reaching the value tiers: a customer is in band k when exactly k floors are above their score,
    which is the band their rank by score gives (see `assign_tiers`; ties share the better band).

    Args:
        policy: A policy cutting by share.
        count: Customers reaching the value tiers.
        smallest: Their scores at the given 0-based positions of the ascending order; called once. An
            engine that cannot sort all scores in one place answers it with exact order statistics.

    Returns:
        One floor per band boundary: +inf for a band of no one, -inf for one beyond the last customer.
    """
    cumulative = np.cumsum([tier.share for tier in policy.value_tiers[:-1]])
    sizes = np.floor(cumulative * count + 0.5).astype(np.int64)
    inside = (sizes >= 1) & (sizes <= count)
    floors = np.where(sizes < 1, np.inf, -np.inf)
    if inside.any():
        floors[inside] = smallest(count - sizes[inside])
    return floors


def assign_tiers(
    frame: pd.DataFrame,
    policy: Policy,
    classic: bool = False,
    scores: np.ndarray | None = None,
    floors: np.ndarray | None = None,
) -> pd.DataFrame:
    """Each customer's tier under `policy`, from predictions (default) or history (`classic=True`).

    Lifecycle state tiers come first: a `state: new` tier takes customers with `tenure_days` below
    `policy.new_customer_days`; otherwise the most serious inactive state whose
    `days_since_last_order_over` is exceeded (lifecycle: New, then Churned, then Dormant). The rest
    reach the value tiers:

    - By share: customers are ranked by score, best first, and banded by cumulative share (lifecycle:
      top 5% Platinum band, next 15% Gold band, rest Silver). Band sizes are the shares times the
      number of customers reaching the value tiers, rounded to the nearest customer; equal scores
      share the better band, so ties can make a band slightly larger.
    - By `min_value`: a customer's band is the best tier whose `min_value` their score reaches.
    - Recency: a customer goes to the best tier at or below their band whose
      `max_days_since_last_order` holds (a top-5% customer who last ordered 45 days ago is Gold).
      Falling customers do not push anyone out of the lower band, so such a tier can come out a
      little above its share.

    Args:
        frame: One row per customer. Columns read (see `required_columns`): customer_id,
            days_since_last_order, tenure_days (if the policy has a `state: new` tier), and
            predictive value scoring: expected_value; classic value scoring: spend_365d;
            predictive RFMP: churn_probability, orders_365d, expected_value, growth_potential
            (may be missing: P = 0, see the module docstring); classic RFMP: orders_365d, spend_365d, spend_trend_90d. Other columns are ignored.
        policy: The tier policy (see `load_policy`).
        classic: Score by history instead of model outputs.
        scores: Policy scores computed elsewhere (one per row), e.g. RFMP percentiles taken against
            another population (`tiering.reference`); default: `policy_scores(frame)`.
        floors: For a policy cutting by share, the band floors (`share_floors`) over a population
            `frame` is a part of (batch scoring on Spark tiers each partition against all
            customers); default: over `frame`'s customers reaching the value tiers.

    Returns:
        A new frame in the input's row order: customer_id, tier, tier_rank (0 = best), score (the
        value or RFMP score; also shown for state tiers, where it decided nothing) and rule (why,
        e.g. "top 5% predicted value, ordered 12 days ago").

    Raises:
        InputError: a column is missing (named), a value is missing or out of range, or a customer
            appears twice.
    """
    columns = required_columns(policy, classic)
    require_columns(frame, columns, "customer frame")
    require_unique_customers(frame, "customer frame")
    data = _numbers(frame, columns)
    score = policy_scores(data, policy, classic).to_numpy() if scores is None else np.asarray(scores, float)
    days = data.days_since_last_order.to_numpy()
    tier_index = _states(data, policy)
    active = tier_index < 0
    band, tier_index[active] = _value_tiers(score[active], days[active], policy, floors)
    tiers = np.array(policy.tier_names, dtype=object)
    rule = np.empty(len(frame), dtype=object)
    rule[active] = _value_rules(band, tier_index[active], days[active], policy, classic)
    rule[~active] = _state_rules(tier_index[~active], data[~active], policy)
    return pd.DataFrame(
        {
            "customer_id": frame.customer_id.to_numpy(),
            "tier": tiers[tier_index],
            "tier_rank": tier_index.astype("int64"),
            "score": score,
            "rule": rule,
        }
    )


def reaches_value_tiers(frame: pd.DataFrame, policy: Policy, classic: bool = False) -> np.ndarray:
    """Whether each customer is in no lifecycle state tier, so reaches the value tiers (the customers
    share cuts count); row by row. `frame` as for `assign_tiers`."""
    columns = required_columns(policy, classic)
    require_columns(frame, columns, "customer frame")
    return _states(_numbers(frame, columns), policy) < 0


def _numbers(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The numeric input columns as floats, with missing and out-of-range values refused."""
    data = pd.DataFrame(index=frame.index)
    if frame.customer_id.isna().any():
        raise InputError("customer frame: customer_id has missing values")
    for column in columns[1:]:
        values = pd.to_numeric(frame[column], errors="coerce").astype(float)
        bad = values.isna() & (column not in OPTIONAL_COLUMNS)
        if column == "churn_probability":
            bad |= ~values.between(0, 1)
        elif column in ("days_since_last_order", "tenure_days"):
            bad |= values < 0
        if bad.any():
            raise InputError(
                f"customer frame: {column} has {int(bad.sum())} missing or invalid values "
                f"(first: customer {frame.customer_id[bad].iloc[0]}, value {frame[column][bad].iloc[0]!r})"
            )
        data[column] = values.to_numpy()
    return data


def _states(data: pd.DataFrame, policy: Policy) -> np.ndarray:
    """Tier index of each customer's lifecycle state, or -1 for customers reaching the value tiers."""
    index = np.full(len(data), -1)
    inactive = [(rank, tier) for rank, tier in enumerate(policy.tiers) if tier.state == "inactive"]
    for rank, tier in sorted(inactive, key=lambda item: -(item[1].days_since_last_order_over or 0)):
        index[(index < 0) & (data.days_since_last_order > tier.days_since_last_order_over).to_numpy()] = rank
    for rank, tier in enumerate(policy.tiers):
        if tier.state == "new":
            index[(data.tenure_days < policy.new_customer_days).to_numpy()] = rank
    return index


def _value_tiers(
    score: np.ndarray, days: np.ndarray, policy: Policy, floors: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """(band, tier) indexes of the customers reaching the value tiers (see `assign_tiers`): a
    customer's band is the number of band floors above their score."""
    tiers = policy.value_tiers
    if not policy.cut_by_share:
        floors = np.array([tier.min_value for tier in tiers[:-1]], dtype=float)
    elif floors is None:
        ordered = np.sort(score)
        floors = share_floors(policy, len(score), lambda positions: ordered[positions])
    band = np.searchsorted(-np.asarray(floors, dtype=float), -score, side="left")
    caps = np.array([_cap(tier) for tier in tiers])
    allowed = (days[:, None] <= caps[None, :]) & (np.arange(len(tiers))[None, :] >= band[:, None])
    allowed[:, -1] |= ~allowed.any(axis=1)
    return band, allowed.argmax(axis=1)


def _cap(tier: Tier) -> float:
    return np.inf if tier.max_days_since_last_order is None else tier.max_days_since_last_order


def _value_rules(
    band: np.ndarray, tier: np.ndarray, days: np.ndarray, policy: Policy, classic: bool
) -> np.ndarray:
    tiers = policy.value_tiers
    label = SCORE_LABEL[(policy.scoring, classic)]
    phrases = np.array([_band_phrase(policy, b, label) for b in range(len(tiers))], dtype=object)
    rule = pd.Series(phrases[band], dtype=object) + ", ordered " + _ago(days)
    fell = tier > band
    if fell.any():
        needs = np.array(
            [f"; {t.name} needs an order within {t.max_days_since_last_order} days" for t in tiers],
            dtype=object,
        )
        rule[fell] = rule[fell] + needs[band[fell]]
    return rule.to_numpy()


def _band_phrase(policy: Policy, band: int, label: str) -> str:
    """'top 5% predicted value', 'top 5-20% predicted value', 'below the top 20% predicted value'."""
    tiers = policy.value_tiers
    if len(tiers) == 1:
        return "active customer"
    last = band == len(tiers) - 1
    if policy.cut_by_share:
        bounds = [0.0, *np.cumsum([tier.share for tier in tiers[:-1]])]
        if last:
            return f"below the top {_percent(bounds[-1])}% {label}"
        low = f"{_percent(bounds[band])}-" if band else ""
        return f"top {low}{_percent(bounds[band + 1])}% {label}"
    floor = tiers[band - 1 if last else band].min_value
    return f"{label} below {floor:g}" if last else f"{label} at least {floor:g}"


def _percent(share: float) -> str:
    return f"{round(share * 100, 6):g}"


def _state_rules(tier_index: np.ndarray, data: pd.DataFrame, policy: Policy) -> np.ndarray:
    rule = pd.Series("", index=data.index, dtype=object)
    for rank, tier in enumerate(policy.tiers):
        mine = tier_index == rank
        if not mine.any() or tier.state is None:
            continue
        if tier.state == "new":
            rule[mine] = (
                "first order "
                + _ago(data.tenure_days[mine].to_numpy()).to_numpy()
                + f", under {policy.new_customer_days} days: too new to judge"
            )
        else:
            days = data.days_since_last_order[mine].round().astype("int64").astype(str).to_numpy()
            rule[mine] = "no order for " + days + f" days (over {tier.days_since_last_order_over})"
    return rule.to_numpy()


def _ago(days: np.ndarray) -> pd.Series:
    """'today', '1 day ago', '12 days ago'."""
    whole = np.round(days).astype("int64")
    distinct, position = np.unique(whole, return_inverse=True)  # a few hundred phrases, not a million
    phrases = np.array(
        ["today" if d == 0 else "1 day ago" if d == 1 else f"{d} days ago" for d in distinct.tolist()],
        dtype=object,
    )
    return pd.Series(phrases[position.reshape(-1)], dtype=object)
