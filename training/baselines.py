"""The classic scores every model must beat, computed on the same test examples.

- churn: days since the last order (recency), an RFM quintile score, and BG/NBD's probability of no
  order in the horizon (not 1 − P(alive), which calls one-time buyers safe);
- customer_value: last horizon's spend, and BG/NBD expected orders × Gamma-Gamma expected spend;
- growth_potential (active customers only): the 90-day spend trend (momentum), the frequency rank
  (orders in 90 days: "the engaged grow"), and the room to the customer's own pace (their 365-day
  order rate over 90 days minus their last 90 days' orders: a customer below their usual pace tends
  to come back up, which is much of what "grows against their own past" measures).

Each baseline is a score where higher means "more of the label" (more churn, more value, more growth).
BTYD models are fitted on the orders before the cutoff only.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from training import btyd

WEEK = 7.0


def quintile(values: pd.Series) -> np.ndarray:
    """1..5 by rank (ties share the lower rank), 5 = highest."""
    return np.ceil(values.rank(method="min", pct=True).to_numpy() * 5).clip(1, 5)


def rfm_churn_score(features: pd.DataFrame) -> np.ndarray:
    """Quintiles of recency (older = worse), frequency and monetary (lower = worse), summed."""
    recency_bad = quintile(features["days_since_last_order"])
    frequency_bad = 6 - quintile(features["orders_365d"])
    monetary_bad = 6 - quintile(features["spend_365d"])
    return recency_bad + frequency_bad + monetary_bad


def btyd_scores(orders: pd.DataFrame, customers: pd.Series, cutoff: date, horizon_days: int) -> pd.DataFrame:
    """BG/NBD P(no order in the horizon) and BG/NBD × Gamma-Gamma expected spend for `customers`.

    Args:
        orders: Columns `customer_id`, `ordered_at` (UTC), `amount`; orders after the cutoff are ignored.
    """
    as_of = pd.Timestamp(cutoff, tz="UTC")
    summary = btyd.rfm_summary(orders, as_of, period_days=WEEK).reindex(customers.to_numpy())
    f, r, t = summary["frequency"], summary["recency"], summary["T"]
    params = btyd.fit_bgnbd(f, r, t)
    weeks = horizon_days / WEEK
    p_none = btyd.prob_no_purchase(params, weeks, f, r, t)
    purchases = btyd.expected_purchases(params, weeks, f, r, t)
    repeaters = summary[summary["frequency"] > 0]
    spend_params = btyd.fit_gamma_gamma(repeaters["frequency"], repeaters["monetary_value"].clip(lower=0.01))
    spend = btyd.expected_average_spend(spend_params, f, summary["monetary_value"].clip(lower=0.01))
    return pd.DataFrame(
        {"p_no_order": p_none, "expected_value": np.asarray(purchases) * np.asarray(spend)},
        index=summary.index,
    )


def churn_baselines(
    test: pd.DataFrame, orders: pd.DataFrame, cutoff: date, horizon_days: int
) -> dict[str, np.ndarray]:
    btyd_frame = btyd_scores(orders, test["customer_id"], cutoff, horizon_days)
    return {
        "recency": test["days_since_last_order"].to_numpy(),
        "rfm_quintiles": rfm_churn_score(test),
        "btyd_p_no_order": btyd_frame["p_no_order"].to_numpy(),
    }


def value_baselines(
    test: pd.DataFrame, orders: pd.DataFrame, cutoff: date, horizon_days: int
) -> dict[str, np.ndarray]:
    btyd_frame = btyd_scores(orders, test["customer_id"], cutoff, horizon_days)
    return {
        "last_horizon_spend": test["spend_prev"].to_numpy(),
        "btyd_expected_value": btyd_frame["expected_value"].to_numpy(),
    }


def own_pace_gap(features: pd.DataFrame) -> np.ndarray:
    """Orders a customer's own 365-day rate predicts for 90 days minus their orders in the last 90.

    The rate is over the customer's tenure when it is shorter than a year (at least 90 days, so a
    customer younger than that has no gap).

    Args:
        features: Columns orders_365d, orders_90d, tenure_days.
    """
    known = features["tenure_days"].astype(float).clip(lower=90, upper=365)
    return (features["orders_365d"] * 90 / known - features["orders_90d"]).to_numpy(dtype=float)


def growth_baselines(
    test: pd.DataFrame, orders: pd.DataFrame, cutoff: date, horizon_days: int
) -> dict[str, np.ndarray]:
    return {
        "spend_trend_90d": test["spend_trend_90d"].to_numpy(),
        "frequency_rank": test["orders_90d"].to_numpy(dtype=float),
        "own_pace_gap": own_pace_gap(test),
    }
