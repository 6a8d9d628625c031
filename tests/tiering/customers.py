"""Seeded synthetic customers with model outputs and history, shaped like the scoring frame."""

from __future__ import annotations

import numpy as np
import pandas as pd


def customers(n: int = 2000, seed: int = 7, recent: bool = False) -> pd.DataFrame:
    """`n` customers; with `recent`, everyone is past the New window and ordered within 30 days.

    Predictions follow history loosely (as trained models do), so classic and predictive tiers
    overlap but are not equal.
    """
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 1500, n) if not recent else rng.integers(60, 1500, n)
    days = np.minimum(rng.exponential(35, n).round(), tenure) if not recent else rng.integers(0, 30, n)
    orders = rng.poisson(np.clip(52 * np.exp(-days / 60), 1, None))
    spend = orders * rng.lognormal(3.8, 0.4, n)
    churn = np.clip(1 / (1 + np.exp(-(days - 60) / 15)) + rng.normal(0, 0.05, n), 0, 1)
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(n)],
            "churn_probability": churn,
            "expected_value": spend / 12 * (1 - churn) * rng.lognormal(0, 0.3, n),
            "growth_potential": rng.normal(0, 1, n),
            "days_since_last_order": days.astype(float),
            "tenure_days": tenure.astype(float),
            "orders_365d": orders.astype(float),
            "spend_365d": spend,
            "spend_trend_90d": rng.uniform(-1, 1, n),
        }
    )


def customer(customer_id: str, **fields: float) -> dict[str, object]:
    """One ordinary active customer as a row; `fields` override the defaults."""
    row: dict[str, object] = {
        "customer_id": customer_id,
        "churn_probability": 0.2,
        "expected_value": 50.0,
        "growth_potential": 0.0,
        "days_since_last_order": 5.0,
        "tenure_days": 400.0,
        "orders_365d": 20.0,
        "spend_365d": 800.0,
        "spend_trend_90d": 0.0,
    }
    return row | fields
