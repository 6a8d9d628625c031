"""Risk flags on scored customers: the few situations operations acts on at once."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

#: Churn probability above which a valuable customer is "at risk".
AT_RISK_CHURN = 0.3
#: Share of customers by predicted value counted as "high value" for the at-risk flag.
HIGH_VALUE_SHARE = 0.2
#: Churn probability above which any customer is "likely to lapse".
LIKELY_TO_LAPSE = 0.5
#: Growth probability above which a customer is flagged as a growth opportunity.
GROWTH_OPPORTUNITY = 0.5


def high_value_cut(expected_value: pd.Series) -> float:
    """The predicted value from which a customer counts as high value (top `HIGH_VALUE_SHARE`):
    `expected_value.quantile(1 - HIGH_VALUE_SHARE)`, +inf for no customers."""
    if not len(expected_value):
        return np.inf
    known = np.sort(expected_value.dropna().to_numpy(dtype=float))
    return linear_quantile(len(known), 1 - HIGH_VALUE_SHARE, lambda positions: known[positions])


def linear_quantile(count: int, q: float, smallest: Callable[[np.ndarray], np.ndarray]) -> float:
    """pandas' `Series.quantile(q)` of `count` known values, to the last bit, from the (at most two)
    order statistics it interpolates between, so an engine that cannot hold all values in one place
    (Spark) gets the same cut.

    pandas hands numpy the percentile `q * 100`, which numpy divides by 100 again; numpy's linear
    method interpolates at virtual index `(count - 1) * q` as `a + (b - a) * t`, or `b - (b - a) *
    (1 - t)` when `t >= 0.5`. Tests compare this with `Series.quantile`.

    Args:
        count: Known (non-missing) values.
        q: The quantile in [0, 1].
        smallest: The values at the given 0-based positions of the ascending order.
    """
    if count == 0:
        return np.nan
    virtual = (count - 1) * np.true_divide(np.float64(q) * 100.0, 100)
    if virtual >= count - 1:
        return float(smallest(np.array([count - 1]))[0])
    lower = np.floor(virtual)
    below, above = smallest(np.array([int(lower), int(lower) + 1]))
    weight = virtual - lower
    step = above - below
    return float(above - step * (1 - weight) if weight >= 0.5 else below + step * weight)


def flag_lists(
    churn_probability: np.ndarray, expected_value: np.ndarray, growth_potential: np.ndarray, value_cut: float
) -> list[list[str]]:
    """The flags of each customer (see `risk_flags`), with the high-value cut given.

    The service passes the cut of the latest batch snapshot, so one customer answered online gets the
    flags their row in that snapshot has.
    """
    flags = _flag_masks(churn_probability, expected_value, growth_potential, value_cut)
    return [[name for name, on in flags.items() if on[row]] for row in range(len(churn_probability))]


def _flag_masks(
    churn_probability: np.ndarray, expected_value: np.ndarray, growth_potential: np.ndarray, value_cut: float
) -> dict[str, np.ndarray]:
    return {
        "high_value_at_risk": (expected_value >= value_cut) & (churn_probability >= AT_RISK_CHURN),
        "likely_to_lapse": churn_probability >= LIKELY_TO_LAPSE,
        "growth_opportunity": growth_potential >= GROWTH_OPPORTUNITY,
    }


def risk_flags(scored: pd.DataFrame, value_cut: float | None = None) -> pd.Series:
    """Comma-separated flags per customer.

    Args:
        scored: churn_probability, expected_value, growth_potential.
        value_cut: The high-value cut over a population `scored` is a part of (batch scoring on Spark
            flags each partition against all customers); default: `high_value_cut` over `scored`.

    Returns:
        `high_value_at_risk` (top 20% predicted value and churn probability ≥ 0.3), `likely_to_lapse`
        (churn probability ≥ 0.5), `growth_opportunity` (growth probability ≥ 0.5); "" when none.
    """
    flags = _flag_masks(
        scored["churn_probability"].to_numpy(),
        scored["expected_value"].to_numpy(),
        scored["growth_potential"].to_numpy(),
        high_value_cut(scored["expected_value"]) if value_cut is None else value_cut,
    )
    joined = pd.Series("", index=scored.index, dtype=object)
    for name, on in flags.items():
        joined = joined.where(~on, joined.where(joined == "", joined + ",") + name)
    return joined.astype(str)
