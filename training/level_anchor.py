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

The anchor is kept only where it helps: on Complete Journey's holiday quarter, whose spend rises
where the cohort's fell, it moved the total from 0.989 to 0.936 of actual. So training tests the
anchored and the raw level on its test cutoff (out of time for the evaluated model, the newest
matured cutoff for the deployed one) and deploys the anchor only if it brought the total nearer the
actual (`LevelChoice`).

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
#: What training does with a value model's anchor: decide on the test cutoff (`LevelChoice`), or
#: keep or drop it whatever the test cutoff says (a shop that knows its population decays, or not).
LEVEL_ANCHOR_MODES = ("auto", "keep", "drop")


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
class LevelChoice:
    """Whether a value model keeps its anchor, decided on one population with known outcomes (its
    test cutoff): kept only if the anchored total is nearer the actual total than the raw one, as a
    ratio (|log(predicted / actual)|: 0.9 and 1.1 of the truth are equally far).

    Attributes:
        anchor: The model's anchor (`level_anchor`).
        factor: The level factor it gave that population (`level_factor`).
        raw_ratio: Raw predicted total / actual total (NaN when the actual total is not positive).
        mode: One of `LEVEL_ANCHOR_MODES`: "auto" decides as above, "keep" and "drop" override it.
    """

    anchor: float
    factor: float
    raw_ratio: float
    mode: str = "auto"

    def __post_init__(self) -> None:
        if self.mode not in LEVEL_ANCHOR_MODES:
            raise ValueError(f"level anchor {self.mode!r}: expected one of {', '.join(LEVEL_ANCHOR_MODES)}")

    @classmethod
    def on(
        cls,
        anchor: float,
        raw: np.ndarray,
        spend_90d: np.ndarray | pd.Series,
        actual: np.ndarray,
        mode: str = "auto",
    ) -> LevelChoice:
        """The choice for `anchor` on a population: its raw predictions, `spend_90d` and what it
        went on to spend, in the same order."""
        truth = float(np.sum(actual))
        ratio = float(np.sum(raw)) / truth if truth > 0 else math.nan
        return cls(anchor, level_factor(anchor, raw, spend_90d), ratio, mode)

    @property
    def anchored_ratio(self) -> float:
        """Anchored predicted total / actual total."""
        return self.raw_ratio * self.factor

    @property
    def nearer(self) -> bool:
        """True when the anchor brought the total nearer the actual; False when either ratio is not
        positive and finite, or the factor is 1 (nothing to gain)."""
        ratios = (self.raw_ratio, self.anchored_ratio)
        if self.factor == 1.0 or not all(math.isfinite(r) and r > 0 for r in ratios):
            return False
        return abs(math.log(self.anchored_ratio)) < abs(math.log(self.raw_ratio))

    @property
    def kept(self) -> bool:
        """Whether the model keeps its anchor: `nearer` under "auto", else as the mode says."""
        return self.mode == "keep" or (self.mode == "auto" and self.nearer)


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
