"""Which cutoffs and customers a training run learns from, validates on and tests on.

For `train --as-of D --horizon H` (no order at or after D is read):

- test cutoff T = D − H: the last cutoff whose horizon has ended by D; every customer is scored;
- training cutoffs: every `step` days from `min_history` days after the first order up to T − H, so
  that no training label window overlaps the test period [T, D);
- validation: a fixed 20% of customers (by a hash of their id), held out at the training cutoffs.

Why customers, not a later cutoff, for validation: windows of consecutive cutoffs overlap, and the
same customer's label barely changes from one week to the next. Validating on a later cutoff of the
same customers measured AUC 0.99 on Complete Journey while the real next quarter gave 0.83, so early
stopping and tuning chased memorised customers. Held-out customers gave 0.86 against 0.89 realised.

After the test, the deployed model is refit on every weekly cutoff up to T (all labelled by D), with
the same held-out customers for early stopping, and calibration on those of the latest cutoffs
(`training.fit.latest_rows`): more history and the most recent behaviour, as sklearn's `refit=True`
does. Its honest score is `tierwise backtest` after D.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

from features.errors import InputError

MIN_HISTORY_DAYS = 56
MIN_TRAIN_CUTOFFS = 3
VALID_SHARE = 0.2


@dataclass(frozen=True)
class BacktestPlan:
    as_of: date
    horizon_days: int
    train: list[date]
    test: date
    deploy_train: list[date]
    step_days: int = 7

    @property
    def all_cutoffs(self) -> list[date]:
        return sorted({*self.train, self.test, *self.deploy_train})


def plan(first_order: date, as_of: date, horizon_days: int, step_days: int = 7) -> BacktestPlan:
    """Cutoffs for a run as of `as_of`.

    Raises:
        InputError: the data holds too little history before `as_of` for the horizon, saying how much
            is needed.
    """
    step = timedelta(days=step_days)
    horizon = timedelta(days=horizon_days)
    test = as_of - horizon
    earliest = first_order + timedelta(days=MIN_HISTORY_DAYS)
    train = _weekly(earliest, test - horizon, step)
    if len(train) < MIN_TRAIN_CUTOFFS:
        needed = MIN_HISTORY_DAYS + (MIN_TRAIN_CUTOFFS - 1) * step_days + 2 * horizon_days
        have = (as_of - first_order).days
        raise InputError(
            f"too little history for a {horizon_days}-day horizon: training as of {as_of} needs orders from "
            f"at least {needed} days before it ({as_of - timedelta(days=needed)}), the data starts "
            f"{first_order} ({have} days); use a shorter --horizon or a later --as-of"
        )
    return BacktestPlan(as_of, horizon_days, train, test, _weekly(earliest, test, step), step_days)


def _weekly(earliest: date, last: date, step: timedelta) -> list[date]:
    """Cutoffs every `step` back from `last`, not before `earliest`, oldest first."""
    dates, current = [], last
    while current >= earliest:
        dates.append(current)
        current -= step
    return sorted(dates)


def is_validation_customer(customer_ids: pd.Series, share: float = VALID_SHARE) -> pd.Series:
    """True for the customers held out for validation: a stable hash of the id, the same in every run."""

    def position(customer: str) -> float:
        return int(hashlib.sha256(str(customer).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF

    return customer_ids.map(position) < share
