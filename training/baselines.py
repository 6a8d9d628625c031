"""The classic scores every model must beat, computed on the same test examples.

- churn: days since the last order (recency), an RFM quintile score, and BG/NBD's probability of no
  order in the horizon (not 1 − P(alive), which calls one-time buyers safe);
- customer_value: last horizon's spend, and BG/NBD expected orders × Gamma-Gamma expected spend;
- growth_potential (active customers only): the 90-day spend trend (momentum), the frequency rank
  (orders in 90 days: "the engaged grow"), and the room to the customer's own pace (their 365-day
  order rate over 90 days minus their last 90 days' orders: a customer below their usual pace tends
  to come back up, which is much of what "grows against their own past" measures).

Each baseline is a score where higher means "more of the label" (more churn, more value, more growth).
The BTYD models read the customers' recency, tenure, order count and spend at the cutoff from the
feature snapshot (`BtydBaseline`), not the raw orders, so the service can answer from them with the
online features it already reads (`training.fallback`); nothing after the cutoff is read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from training import btyd

WEEK = 7.0
#: The features the BTYD baselines read (all in the `rfm` view, so in every feature service).
BTYD_FEATURES = ("days_since_last_order", "tenure_days", "orders_lifetime", "spend_lifetime")


def quintile(values: pd.Series) -> np.ndarray:
    """1..5 by rank (ties share the lower rank), 5 = highest."""
    return np.ceil(values.rank(method="min", pct=True).to_numpy() * 5).clip(1, 5)


def rfm_churn_score(features: pd.DataFrame) -> np.ndarray:
    """Quintiles of recency (older = worse), frequency and monetary (lower = worse), summed."""
    recency_bad = quintile(features["days_since_last_order"])
    frequency_bad = 6 - quintile(features["orders_365d"])
    monetary_bad = 6 - quintile(features["spend_365d"])
    return recency_bad + frequency_bad + monetary_bad


def btyd_summary(features: pd.DataFrame) -> pd.DataFrame:
    """The BTYD inputs, in weeks, from a customer's features at the cutoff.

    frequency = orders − 1, recency = first to last order, T = first order to the cutoff, and
    monetary_value = mean order amount (over every order: the features do not keep the first
    order's amount apart). Orders count one by one, with their times, where `btyd.rfm_summary`
    counts purchase days.

    Args:
        features: Columns `BTYD_FEATURES`, one row per customer with an order before the cutoff.
    """
    tenure = features["tenure_days"].to_numpy(dtype=float)
    orders = features["orders_lifetime"].to_numpy(dtype=float)
    return pd.DataFrame(
        {
            "frequency": orders - 1,
            "recency": (tenure - features["days_since_last_order"].to_numpy(dtype=float)) / WEEK,
            "T": tenure / WEEK,
            "monetary_value": features["spend_lifetime"].to_numpy(dtype=float) / orders,
        },
        index=features.index,
    )


@dataclass(frozen=True)
class BtydBaseline:
    """BG/NBD and Gamma-Gamma parameters fitted at a cutoff, and the horizon they answer for."""

    bgnbd: btyd.BgNbdParams
    gamma_gamma: btyd.GammaGammaParams
    horizon_days: int

    @classmethod
    def fit(cls, features: pd.DataFrame, horizon_days: int) -> BtydBaseline:
        """Fit both models on the customers of `features` (columns `BTYD_FEATURES`)."""
        summary = btyd_summary(features)
        repeaters = summary[summary["frequency"] > 0]
        return cls(
            btyd.fit_bgnbd(summary["frequency"], summary["recency"], summary["T"]),
            btyd.fit_gamma_gamma(repeaters["frequency"], repeaters["monetary_value"].clip(lower=0.01)),
            horizon_days,
        )

    def scores(self, features: pd.DataFrame) -> pd.DataFrame:
        """BG/NBD P(no order in the horizon) (`p_no_order`) and BG/NBD × Gamma-Gamma expected spend in
        it (`expected_value`) per row of `features` (columns `BTYD_FEATURES`)."""
        summary = btyd_summary(features)
        f, r, t = summary["frequency"], summary["recency"], summary["T"]
        weeks = self.horizon_days / WEEK
        purchases = btyd.expected_purchases(self.bgnbd, weeks, f, r, t)
        spend = btyd.expected_average_spend(self.gamma_gamma, f, summary["monetary_value"].clip(lower=0.01))
        return pd.DataFrame(
            {
                "p_no_order": btyd.prob_no_purchase(self.bgnbd, weeks, f, r, t),
                "expected_value": np.asarray(purchases) * np.asarray(spend),
            },
            index=features.index,
        )

    def to_dict(self) -> dict:
        return {
            "bgnbd": asdict(self.bgnbd),
            "gamma_gamma": asdict(self.gamma_gamma),
            "horizon_days": self.horizon_days,
        }

    @classmethod
    def from_dict(cls, data: dict) -> BtydBaseline:
        return cls(
            btyd.BgNbdParams(**data["bgnbd"]),
            btyd.GammaGammaParams(**data["gamma_gamma"]),
            int(data["horizon_days"]),
        )


def btyd_scores(test: pd.DataFrame, horizon_days: int) -> pd.DataFrame:
    """`BtydBaseline.scores` of the test rows, fitted on them (the cutoff's customers)."""
    return BtydBaseline.fit(test, horizon_days).scores(test)


def churn_baselines(test: pd.DataFrame, horizon_days: int) -> dict[str, np.ndarray]:
    btyd_frame = btyd_scores(test, horizon_days)
    return {
        "recency": test["days_since_last_order"].to_numpy(),
        "rfm_quintiles": rfm_churn_score(test),
        "btyd_p_no_order": btyd_frame["p_no_order"].to_numpy(),
    }


def value_baselines(test: pd.DataFrame, horizon_days: int) -> dict[str, np.ndarray]:
    btyd_frame = btyd_scores(test, horizon_days)
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


def growth_baselines(test: pd.DataFrame, horizon_days: int) -> dict[str, np.ndarray]:
    return {
        "spend_trend_90d": test["spend_trend_90d"].to_numpy(),
        "frequency_rank": test["orders_90d"].to_numpy(dtype=float),
        "own_pace_gap": own_pace_gap(test),
    }
