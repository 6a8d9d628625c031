"""A randomized campaign with a known, heterogeneous effect, planted into a home's orders.

Measurement and uplift targeting can only be checked against the truth where the truth is known.
`plant_campaign` takes the customers who ordered in the year before `as_of`, holds out half of them by
the same hash as a real launch (`tiering.campaigns.split`), and gives each treated customer who is
*at risk* (no order for `at_risk_days` to `lost_days` days) `lift` more of their own order rate over
the window: extra orders drawn from a Poisson law, each of about the customer's usual order amount.
Loyal customers (a recent order) and lost ones (no order for `lost_days` or more) get nothing: the
offer cannot make the first buy more, nor bring back the second — what campaign reviews usually find,
and why the customers most at risk are not the ones a campaign changes most. The extra orders are imported like any shop's file, and the
launch is recorded like `tierwise campaigns launch` records one, with the truth beside it
(`truth.json`: the expected extra orders and spend per customer, and their averages).

Complete Journey's own campaigns are not randomized (who received them was chosen on purpose), so a
difference between their recipients and the others is observational, not an effect; a planted
campaign is randomized by construction.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from features.data.duck import sql_string
from features.errors import InputError
from features.files import write_text_atomically
from features.live_data import open_live_data
from features.settings import Settings
from pipelines import campaigns
from pipelines.home_lock import writes_home
from pipelines.import_data import import_file
from tiering.campaigns import Campaign, split

AT_RISK_DAYS = 30
LOST_DAYS = 120
LIFT = 0.25


@dataclass(frozen=True)
class PlantedCampaign:
    name: str
    as_of: date
    treated: int
    control: int
    extra_orders: int
    true_effect_orders: float
    true_effect_spend: float


@writes_home
def plant_campaign(
    settings: Settings,
    as_of: date,
    window_days: int = 90,
    name: str = "planted",
    lift: float = LIFT,
    at_risk_days: int = AT_RISK_DAYS,
    lost_days: int = LOST_DAYS,
    seed: int = 0,
) -> PlantedCampaign:
    """Plant the campaign (see the module) and return its truth."""
    campaign = Campaign(
        name=name,
        description=(
            f"Synthetic: +{lift:.0%} order rate for customers without an order for {at_risk_days} to "
            f"{lost_days} days."
        ),
        offer="planted synthetic effect",
        control_share=0.5,
        window_days=window_days,
        outcome="orders",
    )
    if campaigns.launch_dates(settings, name):
        raise InputError(f"campaign {name} exists in {settings.home}; plant under another name")
    history = _history(settings, as_of)
    if len(history) < 4:
        raise InputError(
            f"only {len(history)} customers ordered in the year before {as_of}: nothing to plant"
        )
    recency = (pd.Timestamp(as_of, tz="UTC") - history.last_order).dt.days.to_numpy()
    at_risk = (recency >= at_risk_days) & (recency < lost_days)
    segment = np.select([recency < at_risk_days, at_risk], ["loyal", "at-risk"], "lost")
    rate = history.orders.to_numpy() / 365.0
    expected_extra = lift * rate * window_days * at_risk
    held_out = split(name, history.customer_id, campaign.control_share)
    rng = np.random.default_rng(seed)
    extra = rng.poisson(np.where(held_out, 0.0, expected_extra))
    orders = _extra_orders(history, extra, as_of, window_days, rng, name)
    if len(orders):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{name}-orders.csv"
            orders.to_csv(path, index=False)
            import_file(settings, path, [])
    churn, churn_source = _churn_risk(settings, history, as_of, recency)
    members = pd.DataFrame(
        {
            "customer_id": history.customer_id.astype(str),
            "group": np.where(held_out, "control", "treatment"),
            "tier": segment,
            "benefit": "",
            "churn_probability": churn,
            "expected_value": rate * window_days * history.mean_amount.to_numpy(),
            "growth_potential": np.nan,
        }
    )
    truth = {
        "design": "planted: randomized by construction",
        "lift": lift,
        "at_risk_days": at_risk_days,
        "lost_days": lost_days,
        "true_effect_orders": float(expected_extra.mean()),
        "true_effect_spend": float((expected_extra * history.mean_amount.to_numpy()).mean()),
        "churn_probability": churn_source,
        "true_effect_by_tier": {
            "at-risk": float(expected_extra[at_risk].mean()) if at_risk.any() else 0.0,
            "loyal": 0.0,
            "lost": 0.0,
        },
    }
    record = {
        "campaign": campaign.model_dump(mode="json"),
        "definition_sha256": campaigns.fingerprint(campaign),
        "as_of": as_of.isoformat(),
        "launched_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "policy": campaign.policy,
        "model_versions": {},
        "groups": {"treatment": int((~held_out).sum()), "control": int(held_out.sum())},
        "planted": truth,
    }
    folder = campaigns.campaigns_dir(settings) / name / as_of.isoformat()
    campaigns.write_launch(folder, members[campaigns.MEMBER_COLUMNS], record)
    write_text_atomically(json.dumps(truth, indent=1), folder / "truth.json")
    return PlantedCampaign(
        name,
        as_of,
        record["groups"]["treatment"],
        record["groups"]["control"],
        int(extra.sum()),
        truth["true_effect_orders"],
        truth["true_effect_spend"],
    )


def _churn_risk(
    settings: Settings, history: pd.DataFrame, as_of: date, recency: np.ndarray
) -> tuple[np.ndarray, str]:
    """Each customer's churn risk at the launch, as a real launch records it: what answers churn in the
    home (its champion, or the baseline a first version lost to) on the features of that day; recency
    (days / 365, capped) only when nothing answers churn."""
    from pipelines import build_features
    from training import champions, registry

    registry.configure(settings)
    churn = champions.load_champions(["churn"]) if registry.versions("churn") else None
    if churn is None or churn.sources["churn"] == "none":
        return np.minimum(recency / 365.0, 1.0), "recency / 365 (nothing answers churn in the home)"
    features = build_features.features_at(settings, as_of)
    rows = history[["customer_id"]].astype(str).merge(features, on="customer_id", how="left")
    predicted = champions.predict(churn, rows)["churn_probability"]
    return predicted.to_numpy(dtype=float), f"churn {churn.sources['churn']}"


def _history(settings: Settings, as_of: date) -> pd.DataFrame:
    """Customers with an order in the year before `as_of`: orders, mean amount, last order."""
    con = open_live_data(settings)
    start, end = sql_string((as_of - timedelta(days=365)).isoformat()), sql_string(as_of.isoformat())
    return con.execute(
        f"""SELECT customer_id, count(*) AS orders, avg(amount) AS mean_amount, max(ordered_at) AS last_order
            FROM orders WHERE ordered_at >= {start}::TIMESTAMPTZ AND ordered_at < {end}::TIMESTAMPTZ
            GROUP BY customer_id ORDER BY customer_id"""
    ).df()


def _extra_orders(
    history: pd.DataFrame,
    extra: np.ndarray,
    as_of: date,
    window_days: int,
    rng: np.random.Generator,
    name: str,
) -> pd.DataFrame:
    """The planted orders: at a random moment of the window, about the customer's usual amount."""
    owners = np.repeat(np.arange(len(history)), extra)
    seconds = rng.integers(0, window_days * 86_400, len(owners))
    start = pd.Timestamp(as_of, tz="UTC")
    amounts = history.mean_amount.to_numpy()[owners] * rng.gamma(4.0, 0.25, len(owners))
    ids = history.customer_id.astype(str).to_numpy()[owners]
    number = pd.Series(ids).groupby(ids).cumcount().to_numpy()
    return pd.DataFrame(
        {
            "customer_id": ids,
            "order_id": [f"{name}-{customer}-{n}" for customer, n in zip(ids, number, strict=True)],
            "ordered_at": (start + pd.to_timedelta(seconds, unit="s")).strftime("%Y-%m-%d %H:%M:%S"),
            "amount": np.round(amounts, 2),
        }
    )
