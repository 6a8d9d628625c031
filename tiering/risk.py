"""Risk flags on scored customers: the few situations operations acts on at once."""

from __future__ import annotations

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
    """The predicted value from which a customer counts as high value (top `HIGH_VALUE_SHARE`)."""
    return float(expected_value.quantile(1 - HIGH_VALUE_SHARE)) if len(expected_value) else np.inf


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


def risk_flags(scored: pd.DataFrame) -> pd.Series:
    """Comma-separated flags per customer.

    Args:
        scored: churn_probability, expected_value, growth_potential.

    Returns:
        `high_value_at_risk` (top 20% predicted value and churn probability ≥ 0.3), `likely_to_lapse`
        (churn probability ≥ 0.5), `growth_opportunity` (growth probability ≥ 0.5); "" when none.
    """
    flags = _flag_masks(
        scored["churn_probability"].to_numpy(),
        scored["expected_value"].to_numpy(),
        scored["growth_potential"].to_numpy(),
        high_value_cut(scored["expected_value"]),
    )
    joined = pd.Series("", index=scored.index, dtype=object)
    for name, on in flags.items():
        joined = joined.where(~on, joined.where(joined == "", joined + ",") + name)
    return joined.astype(str)
