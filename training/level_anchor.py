"""The level anchor of the customer-value model: one factor per scored population that sets its mean
prediction to what its recent spend says, leaving every customer's rank alone.

Why: trees trained on stacked cutoffs carry the population's level of those cutoffs forward. When a
population's purchase rate decays (a single cohort whose customers order less and less), the value
model over-predicts the total out of time: on a synthetic cohort (`tierwise data synth
--half-life-days`) the predicted/actual total was 1.55-1.62. Dropping features, recency weights,
linear trees and rescaling by the test cutoff's ratio were measured and rejected. The anchor is what
worked: the fitted model keeps `anchor = sum(label) / sum(spend_90d)` over the customers of its
newest training cutoff (its labels are complete), and a population scored at a later date gets every
value prediction multiplied by `anchor x mean(spend_90d) / mean(raw prediction)` over its customers
(`level_factor`). Measured with default parameters (README, "Models"): the cohort's ratio went from
1.547 to 1.016 and 1.619 to 1.002; on Complete Journey's Q4 from 0.984 to 0.945.

The factor belongs to a population, not to a customer: batch scoring computes it over everyone
scored (on Spark from exact sums collected over the partitions, `LevelSums`), stores it with the tier
snapshot, and the service applies the snapshot's factor so an answer over HTTP equals the batch row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: The feature the level is anchored on: a population's recent spend.
ANCHOR_FEATURE = "spend_90d"


def level_anchor(frames: Sequence[pd.DataFrame], label: str) -> float | None:
    """`sum(label) / sum(spend_90d)` over the rows of the newest cutoff (`event_timestamp`) of
    `frames` (a model's training and validation examples: all customers of that cutoff); every row
    when there is no `event_timestamp`. None when the spend sums to zero or nothing is finite.

    Args:
        frames: Labelled examples with `label`, `spend_90d` and (optionally) `event_timestamp`.
        label: The label column.
    """
    rows = pd.concat(
        [frame[[c for c in (label, ANCHOR_FEATURE, "event_timestamp") if c in frame]] for frame in frames]
    )
    if "event_timestamp" in rows and len(rows):
        rows = rows[rows["event_timestamp"] == rows["event_timestamp"].max()]
    spend = float(rows[ANCHOR_FEATURE].sum())
    anchor = float(rows[label].sum()) / spend if spend else math.nan
    return anchor if math.isfinite(anchor) and anchor > 0 else None


@dataclass(frozen=True)
class LevelSums:
    """Exact sums of a population's raw predictions and recent spend, as integer multiples of
    `2**-UNIT_BITS`: sums of parts (Spark partitions) add up to the sum of the whole, whatever the
    order, so every engine gets the same factor to the last bit. `finite` is False when a value was
    NaN or infinite."""

    prediction: int = 0
    spend: int = 0
    finite: bool = True

    def __add__(self, other: LevelSums) -> LevelSums:
        return LevelSums(
            self.prediction + other.prediction, self.spend + other.spend, self.finite and other.finite
        )

    @classmethod
    def of(cls, predictions: np.ndarray, spend_90d: np.ndarray | pd.Series) -> LevelSums:
        """The sums over one population (or one part of it)."""
        predictions = np.asarray(predictions, dtype=np.float64)
        spend = pd.to_numeric(pd.Series(spend_90d), errors="coerce").to_numpy(dtype=np.float64)
        finite = bool(np.isfinite(predictions).all() and np.isfinite(spend).all())
        if not finite:
            return cls(finite=False)
        return cls(_exact_sum(predictions), _exact_sum(spend))

    def factor(self, anchor: float | None) -> float:
        """`anchor x mean(spend) / mean(prediction)` (the counts cancel); 1 without an anchor, with a
        zero sum or a value that was not finite."""
        if anchor is None or not self.finite or self.prediction <= 0 or self.spend <= 0:
            return 1.0
        factor = anchor * (self.spend / self.prediction)  # int / int: correctly rounded
        return factor if math.isfinite(factor) and factor > 0 else 1.0


def level_factor(anchor: float | None, predictions: np.ndarray, spend_90d: np.ndarray | pd.Series) -> float:
    """The one factor by which every value prediction of a population is multiplied, so that its
    mean prediction is `anchor x` its mean `spend_90d` (module docstring); 1 when `anchor` is None.

    Args:
        anchor: The model's `ModelBundle.level_anchor`.
        predictions: The model's raw predictions for every customer of the population.
        spend_90d: Their `spend_90d`, in the same order.
    """
    return LevelSums.of(predictions, spend_90d).factor(anchor)


#: Bits below the unit of `LevelSums`: every finite float64 is a whole multiple of 2**-1074, and
#: `frexp` mantissas carry 53 bits.
UNIT_BITS = 1074 + 53
_HALF = 26


def _exact_sum(values: np.ndarray) -> int:
    """`sum(values) * 2**UNIT_BITS`, exactly, as a Python integer (values finite)."""
    mantissa, exponent = np.frexp(values)
    whole = (mantissa * 2.0**53).astype(np.int64)  # exact: |mantissa| < 1 holds 53 bits
    high, low = whole >> _HALF, whole & ((1 << _HALF) - 1)  # int64 sums of these cannot overflow
    total = 0
    for power in np.unique(exponent):
        at = exponent == power
        part = (int(high[at].sum()) << _HALF) + int(low[at].sum())
        total += part << int(power + 1074)
    return total
