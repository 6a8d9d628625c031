"""What the service answers for `tier`: the latest batch tier snapshot, and the policy for anyone else.

Tiers carry retention and manual overrides, which depend on a customer's history of snapshots, so
for a customer in the latest snapshot the service answers that snapshot's tier: the API and the
batch output can never disagree, until an order event gives a customer newer features: then the
policy tiers them again and retention starts from their snapshot tier (`TierLookup.retier`). Customers
missing from it (what-if vectors, customers who appeared
after the batch ran) are tiered by the policy against the snapshot's population
(`tiering.reference`), and customers without any features get the cold-start answer: the
median predictions of the snapshot's newest customers and the policy's tier for new customers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from features.model_table import MODELS, PREDICTION_COLUMNS
from features.settings import Settings
from tiering import Policy, load_policy, required_columns
from tiering.assign import OPTIONAL_COLUMNS
from tiering.reference import TierReference
from tiering.retention import apply_retention
from tiering.risk import high_value_cut
from training.champions import LEVEL_FACTOR_COLUMNS

#: Feature columns the policies and cold-start prior read besides the predictions.
HISTORY_COLUMNS = ["days_since_last_order", "tenure_days", "orders_365d"]
PREDICTIONS = list(PREDICTION_COLUMNS)


@dataclass(frozen=True)
class ColdStart:
    """The documented answer for a customer without features."""

    churn_probability: float
    expected_value: float
    growth_potential: float | None
    tier: str
    rule: str


@dataclass(frozen=True)
class TierLookup:
    """The latest tier snapshot of one policy, ready for per-customer lookups.

    Attributes:
        policy: The serving policy.
        as_of: Date of the tier snapshot.
        tiers: customer_id → (tier, rule) from the snapshot.
        personas: customer_id → (persona id, name) from the snapshot (empty before personas exist).
        offers: customer_id → (offers, their reasons), as the snapshot holds them (" | "-joined).
        retention: The snapshot's customer_id, tier, below_since and change, indexed by customer_id:
            what retention needs to tier a customer whose features an order event moved past it.
        reference: The policy frozen against the snapshot's population.
        value_cut: Predicted value from which a customer is "high value" in the snapshot (risk flags).
        cold_start: The answer for customers without features.
        level_factors: Per anchored model, the level factor the snapshot was scored with and the
            model version it was computed for (`training.level_anchor`); empty in snapshots
            scored before the anchor.
    """

    policy: Policy
    as_of: date
    tiers: dict[str, tuple[str, str]]
    personas: dict[str, tuple[int, str]]
    offers: dict[str, tuple[str, str]]
    retention: pd.DataFrame
    reference: TierReference
    value_cut: float
    cold_start: ColdStart
    level_factors: dict[str, tuple[float, int | None]] = field(default_factory=dict)

    @classmethod
    def load(cls, settings: Settings, policy_name: str = "lifecycle") -> TierLookup:
        """The lookup of the latest snapshot in `data/tiers/<policy>/`.

        Raises:
            InputError: no tier snapshot yet (run `tierwise score`), or its feature snapshot is gone.
        """
        policy = load_policy(policy_name)
        tiers = settings.tier_snapshots(policy.name)
        as_of = tiers.choose()
        snapshot = tiers.read(
            as_of,
            [
                "customer_id",
                "tier",
                "reason",
                "change",
                "below_since",
                "persona_id",
                "persona",
                "offers",
                "offer_reasons",
                *PREDICTIONS,
                *LEVEL_FACTOR_COLUMNS.values(),
                *(MODELS[name].version_column for name in LEVEL_FACTOR_COLUMNS),
            ],
        )
        rules = [
            caller_rule(change, reason)
            for change, reason in zip(
                snapshot.get("change", [""] * len(snapshot)), snapshot.reason, strict=True
            )
        ]
        features = settings.feature_snapshots
        history = features.read(features.choose(as_of), ["customer_id", *HISTORY_COLUMNS])
        population = snapshot.merge(history, on="customer_id", how="left", validate="one_to_one")
        # Growth potential may be missing (customers without an order in the horizon): it is no gap.
        needed = [c for c in required_columns(policy) if c not in OPTIONAL_COLUMNS]
        population = population.dropna(subset=needed)
        tiers = dict(zip(snapshot.customer_id, zip(snapshot.tier, rules, strict=True), strict=True))
        personas = {}
        if "persona_id" in snapshot and snapshot.persona_id.notna().any():
            personas = dict(
                zip(
                    snapshot.customer_id,
                    zip(snapshot.persona_id.astype(int), snapshot.persona, strict=True),
                    strict=True,
                )
            )
        offers = {}
        if "offers" in snapshot:
            listed = snapshot[snapshot.offers.notna()]
            offers = dict(
                zip(listed.customer_id, zip(listed.offers, listed.offer_reasons, strict=True), strict=True)
            )
        return cls(
            policy=policy,
            as_of=as_of,
            tiers=tiers,
            personas=personas,
            offers=offers,
            retention=snapshot[["customer_id", "tier", "below_since", "change"]].set_index(
                "customer_id", drop=False
            ),
            reference=TierReference.from_population(population, policy),
            value_cut=high_value_cut(snapshot.expected_value),
            cold_start=_cold_start(population, policy, as_of),
            level_factors=_level_factors(snapshot),
        )

    @property
    def has_offers(self) -> bool:
        """Whether the snapshot has offers at all (data without products has none)."""
        return bool(self.offers)

    def assign(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Tiers for customers outside the snapshot (customer_id, tier, rule)."""
        return self.reference.assign(frame)[["customer_id", "tier", "rule"]]

    def retier(self, frame: pd.DataFrame, as_of: date) -> pd.DataFrame:
        """Tiers, as of `as_of`, for customers of the snapshot whose features are newer than it (an
        order event): the policy tier, then retention from their snapshot tier (upgrades and lifecycle
        exits at once, a downgrade after its grace). Returns customer_id, tier, change, reason."""
        assigned = self.assign(frame)
        known = self.retention.reindex(assigned.customer_id).dropna(subset=["tier"])
        return apply_retention(assigned, known.reset_index(drop=True), as_of, policy=self.policy)[
            ["customer_id", "tier", "change", "reason"]
        ]


def _level_factors(snapshot: pd.DataFrame) -> dict[str, tuple[float, int | None]]:
    """Each anchored model's level factor in the snapshot (one value per snapshot) and the version
    that scored it."""
    found = {}
    for name, column in LEVEL_FACTOR_COLUMNS.items():
        if column in snapshot and len(snapshot):
            version = snapshot.get(MODELS[name].version_column)
            known = version is not None and pd.notna(version.iat[0])
            found[name] = (float(snapshot[column].iat[0]), int(version.iat[0]) if known else None)
    return found


def caller_rule(change: str | None, reason: str) -> str:
    """The tier rule an API caller may read: a staff override's note stays in the batch snapshot."""
    return "manual override by staff" if change == "override" else reason


def _cold_start(population: pd.DataFrame, policy: Policy, as_of: date) -> ColdStart:
    """Medians of the customers in their first `new_customer_days` (all customers if there are none)."""
    newest = population[population.tenure_days < policy.new_customer_days]
    basis = f"customers in their first {policy.new_customer_days} days"
    if newest.empty:
        newest, basis = population, "all customers"
    new_tiers = [tier.name for tier in policy.tiers if tier.state == "new"]
    tier = new_tiers[0] if new_tiers else policy.value_tiers[-1].name
    medians = newest[PREDICTIONS].median() if len(newest) else pd.Series(np.nan, index=PREDICTIONS)
    return ColdStart(
        churn_probability=float(medians.churn_probability),
        expected_value=float(medians.expected_value),
        growth_potential=None if pd.isna(medians.growth_potential) else float(medians.growth_potential),
        tier=tier,
        rule=f"cold start: no purchase history yet; median prediction of {basis} on {as_of.isoformat()}",
    )
