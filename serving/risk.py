"""Risk flags on scored customers: the few situations operations acts on at once."""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Churn probability above which a valuable customer is "at risk".
AT_RISK_CHURN = 0.3
#: Share of customers by predicted value counted as "high value" for the at-risk flag.
HIGH_VALUE_SHARE = 0.2
#: Growth probability above which a customer is flagged as a growth opportunity.
GROWTH_OPPORTUNITY = 0.5


def risk_flags(scored: pd.DataFrame) -> pd.Series:
    """Comma-separated flags per customer.

    Args:
        scored: churn_probability, expected_value, growth_potential, tier_rank.

    Returns:
        `high_value_at_risk` (top 20% predicted value and churn probability ≥ 0.3), `likely_to_lapse`
        (churn probability ≥ 0.5), `growth_opportunity` (growth probability ≥ 0.5); "" when none.
    """
    value_cut = scored["expected_value"].quantile(1 - HIGH_VALUE_SHARE) if len(scored) else np.inf
    flags = {
        "high_value_at_risk": (scored["expected_value"] >= value_cut)
        & (scored["churn_probability"] >= AT_RISK_CHURN),
        "likely_to_lapse": scored["churn_probability"] >= 0.5,
        "growth_opportunity": scored["growth_potential"] >= GROWTH_OPPORTUNITY,
    }
    joined = pd.Series("", index=scored.index, dtype=object)
    for name, on in flags.items():
        joined = joined.where(~on, joined.where(joined == "", joined + ",") + name)
    return joined.astype(str)
