"""Campaigns as configuration: who is targeted, with what, at what cost, held out how, measured on what.

A campaign is a YAML file an operations team writes (`<home>/campaigns/<name>.yaml`):

```yaml
name: winback-q3
offer: win-back coupon 10 EUR
policy: lifecycle
audience: {tiers: [Dormant], min_churn_probability: 0.3}   # also personas: [3, "Weekend big-basket shoppers"]
cost_per_contact: 0.10
cost_per_redemption: 10.0
control_share: 0.2
window_days: 90
outcome: spend          # retained, orders, spend or margin
```

It is validated at load with field-named errors. `audience_of` picks the customers of a tier snapshot
and `split` holds out the control group by a hash of the campaign's name and the customer id: the
same customers land in the same group however often the campaign is launched, and knowing a
customer's tier or score says nothing about their group.
"""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from features.config_errors import validated
from features.errors import InputError
from features.files import read_yaml
from tiering.policy import SAFE_NAME, Policy

OUTCOMES = ("retained", "orders", "spend", "margin")


class _Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Audience(_Config):
    """Which customers of the tier snapshot a campaign targets; every condition given must hold.

    Attributes:
        tiers: Tiers of the campaign's policy (none: every tier).
        personas: Personas, by name or id (`tierwise personas list`; none: every persona).
        risk_flags: The customer has at least one of these flags (none: any).
        min_churn_probability, max_churn_probability: Bounds on the churn probability.
        min_expected_value, max_expected_value: Bounds on the expected value over the horizon.
        min_growth_potential: Lower bound on the growth potential (customers without one, those
            with no order in the models' horizon, are left out).
    """

    tiers: tuple[str, ...] = ()
    personas: tuple[int | str, ...] = ()
    risk_flags: tuple[str, ...] = ()
    min_churn_probability: float | None = Field(None, ge=0, le=1)
    max_churn_probability: float | None = Field(None, ge=0, le=1)
    min_expected_value: float | None = Field(None, ge=0)
    max_expected_value: float | None = Field(None, ge=0)
    min_growth_potential: float | None = Field(None, ge=0, le=1)

    @model_validator(mode="after")
    def _bounds_in_order(self) -> Audience:
        for low, high in (
            ("min_churn_probability", "max_churn_probability"),
            ("min_expected_value", "max_expected_value"),
        ):
            if (
                getattr(self, low) is not None
                and getattr(self, high) is not None
                and getattr(self, low) > getattr(self, high)
            ):
                raise ValueError(f"{low} {getattr(self, low):g} is above {high} {getattr(self, high):g}")
        return self


class Campaign(_Config):
    """One campaign.

    Attributes:
        name: Names its folder in the home: letters, digits, `_` and `-`.
        description: One line for reports.
        offer: What the treated customers get ("win-back coupon 10 EUR").
        policy: The tier policy whose snapshot the audience is picked from.
        audience: Who is targeted.
        cost_per_contact: Cost of reaching one treated customer (message, printing).
        cost_per_redemption: Cost each time a treated customer uses the offer; a treated customer
            who orders in the window is counted as redeeming (orders do not record the offer).
        control_share: Share of the audience held out, in (0, 0.5].
        start: The launch date, if fixed (else `--as-of` or the latest snapshot).
        window_days: How long after the launch the outcomes are counted.
        outcome: The primary outcome: retained (ordered in the window), orders, spend or margin.
        margin_rate: Margin as a share of spend, for the margin outcome and incremental margin.
        expected_lift: The relative lift of the primary outcome the campaign is meant to reach;
            `measure` says when the groups are too small to detect it.
    """

    name: str = Field(pattern=SAFE_NAME, max_length=64)
    description: str = ""
    offer: str = Field(min_length=1, max_length=200)
    policy: str = "lifecycle"
    audience: Audience = Audience()
    cost_per_contact: float = Field(0.0, ge=0)
    cost_per_redemption: float = Field(0.0, ge=0)
    control_share: float = Field(0.1, gt=0, le=0.5)
    start: date | None = None
    window_days: int = Field(90, ge=7, le=366)
    outcome: Literal["retained", "orders", "spend", "margin"] = "spend"
    margin_rate: float = Field(0.25, gt=0, le=1)
    expected_lift: float = Field(0.05, gt=0, le=10)

    @property
    def secondary_outcomes(self) -> list[str]:
        return [outcome for outcome in OUTCOMES if outcome != self.outcome]


def parse_campaign(data: Any, source: str = "campaign") -> Campaign:
    """Validate a mapping (parsed YAML) into a `Campaign`; errors name the field path and `source`."""
    return validated(Campaign, data, source, "campaign")


def load_campaign(path: Path) -> Campaign:
    """A campaign YAML file.

    Raises:
        InputError: the file is missing or not valid YAML, a field is wrong, or its `name` differs
            from the file name (`winback.yaml` must hold `name: winback`).
    """
    if not path.is_file():
        raise InputError(f"campaign {path.stem!r}: no file {path}")
    campaign = parse_campaign(read_yaml(path), source=str(path))
    if campaign.name != path.stem:
        raise InputError(f"{path}: name: {campaign.name!r} must match the file name {path.stem!r}")
    return campaign


def audience_of(campaign: Campaign, snapshot: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """The snapshot's customers the campaign targets, in customer-id order.

    Raises:
        InputError: a tier of the audience is not a tier of the policy (`audience.tiers: ...`), or a
            persona is in none of the snapshot's personas (`audience.personas: ...`).
    """
    audience = campaign.audience
    unknown = [tier for tier in audience.tiers if tier not in policy.tier_names]
    if unknown:
        raise InputError(
            f"campaign {campaign.name}: audience.tiers: {', '.join(map(repr, unknown))} not a tier of "
            f"policy {policy.name} (tiers: {', '.join(policy.tier_names)})"
        )
    chosen = pd.Series(True, index=snapshot.index)
    if audience.tiers:
        chosen &= snapshot.tier.isin(audience.tiers)
    if audience.personas:
        chosen &= _in_personas(campaign, snapshot)
    if audience.risk_flags:
        flags = snapshot.risk_flags.fillna("").astype(str).str.split(",")
        chosen &= flags.map(lambda found: bool(set(found) & set(audience.risk_flags)))
    bounds = (
        ("churn_probability", audience.min_churn_probability, audience.max_churn_probability),
        ("expected_value", audience.min_expected_value, audience.max_expected_value),
        ("growth_potential", audience.min_growth_potential, None),
    )
    for column, low, high in bounds:
        values = snapshot[column].astype(float)
        if low is not None:
            chosen &= values >= low
        if high is not None:
            chosen &= values <= high
    members = snapshot[chosen.to_numpy()].copy()
    members["customer_id"] = members.customer_id.astype(str)
    return members.sort_values("customer_id").reset_index(drop=True)


def _in_personas(campaign: Campaign, snapshot: pd.DataFrame) -> pd.Series:
    """Whether each customer's persona (by name or id) is one of the audience's."""
    wanted = campaign.audience.personas
    if "persona" not in snapshot or snapshot.persona.isna().all():
        raise InputError(
            f"campaign {campaign.name}: audience.personas: the snapshot has no personas; run "
            "`tierwise personas fit`, then `tierwise score`"
        )
    named = snapshot[["persona_id", "persona"]].dropna().drop_duplicates().sort_values("persona_id")
    unknown = [p for p in wanted if p not in set(named.persona) and p not in set(named.persona_id)]
    if unknown:
        known = "; ".join(f"{i}: {n}" for i, n in named.itertuples(index=False))
        raise InputError(
            f"campaign {campaign.name}: audience.personas: {', '.join(map(repr, unknown))} not a persona "
            f"of the snapshot ({known})"
        )
    return snapshot.persona.isin(wanted) | snapshot.persona_id.isin([p for p in wanted if isinstance(p, int)])


def split(campaign_name: str, customer_ids: pd.Series, control_share: float) -> np.ndarray:
    """True for the customers held out as control: a hash of (campaign, customer) below the share.

    Deterministic per campaign and customer, independent of everything else about the customer.
    """
    draws = np.array(
        [
            int.from_bytes(hashlib.sha256(f"{campaign_name}|{customer}".encode()).digest()[:8], "big")
            for customer in customer_ids.astype(str)
        ],
        dtype=np.float64,
    )
    return draws / 2.0**64 < control_share
