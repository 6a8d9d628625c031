"""Tiering a few customers against the population of a batch snapshot.

Share-based tiers are relative ("top 5%"), so one customer alone cannot be cut by them: the service
needs the population. Re-ranking a million customers per request is out of the question, so
`TierReference` keeps what the cuts depend on: the score each share boundary falls at (so the value
tiers become `min_value` cuts that give exactly the snapshot's bands) and, for RFMP, the sorted
component values that percentile ranks are taken against. A customer tiered this way gets the tier
they would get if they had been part of that snapshot's ranking.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tiering.assign import assign_tiers, raw_rfmp_components, share_floors
from tiering.policy import Policy


@dataclass(frozen=True)
class TierReference:
    """A policy frozen against one population.

    Attributes:
        policy: The policy with its value tiers cut by `min_value` thresholds equal to the population's
            share boundaries (the original when it already cuts by `min_value`).
        classic: Whether scores come from history instead of predictions.
        components: For RFMP, each component's raw values over the population, sorted.
    """

    policy: Policy
    classic: bool
    components: dict[str, np.ndarray]

    @classmethod
    def from_population(
        cls, population: pd.DataFrame, policy: Policy, classic: bool = False
    ) -> TierReference:
        """Freeze `policy` against `population` (the columns `assign_tiers` reads, one row per customer)."""
        assigned = assign_tiers(population, policy, classic)
        components = {}
        if policy.scoring == "rfmp":
            raw = raw_rfmp_components(population, classic)
            components = {
                name: np.sort(values.dropna().to_numpy(dtype=float)) for name, values in raw.items()
            }
        if not policy.cut_by_share:
            return cls(policy, classic, components)
        value_names = {tier.name for tier in policy.value_tiers}
        active = np.sort(assigned.score[assigned.tier.isin(value_names)].to_numpy())
        floors = share_floors(policy, len(active), lambda positions: active[positions]).tolist()
        tiers = list(policy.tiers)
        for index, floor in zip(_value_positions(policy)[:-1], floors, strict=True):
            tiers[index] = tiers[index].model_copy(update={"share": None, "min_value": floor})
        return cls(policy.model_copy(update={"tiers": tuple(tiers)}), classic, components)

    def scores(self, frame: pd.DataFrame) -> np.ndarray:
        """Policy scores of `frame`'s customers as if ranked within the population."""
        if self.policy.scoring == "value":
            column = "spend_365d" if self.classic else "expected_value"
            return frame[column].to_numpy(dtype=float)
        raw = raw_rfmp_components(frame, self.classic)
        weights = self.policy.rfmp_weights.as_dict()
        return sum(
            weights[name] * _percentile_against(self.components[name], raw[name].to_numpy(dtype=float))
            for name in weights
        )

    def assign(self, frame: pd.DataFrame) -> pd.DataFrame:
        """`assign_tiers` for `frame`'s customers against the population (same output columns)."""
        return assign_tiers(frame, self.policy, self.classic, scores=self.scores(frame))


def _value_positions(policy: Policy) -> list[int]:
    return [index for index, tier in enumerate(policy.tiers) if not tier.is_state]


def _percentile_against(sorted_population: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Percentile rank of each value had it been ranked with the population's known values (ties count
    half); a missing value gets 0, as in `tiering.assign.percentile`."""
    if len(sorted_population) == 0:
        return np.where(np.isnan(values), 0.0, 1.0)
    below = np.searchsorted(sorted_population, values, side="left")
    at_most = np.searchsorted(sorted_population, values, side="right")
    return np.where(np.isnan(values), 0.0, (below + at_most) / (2 * len(sorted_population)))
