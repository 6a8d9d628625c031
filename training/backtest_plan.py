"""Which cutoffs a training run learns from, validates on and tests on: time-ordered, never random.

For `train --as-of D --horizon H` (no order at or after D is read):

- test cutoff  T = D − H: the last cutoff whose horizon has ended by D;
- validation   V = T − H: its label window ends where the test period starts;
- training     every `step` days before V, from `min_history` days after the first order.

No training or validation example's label window overlaps the test period [T, D). Training windows
do overlap the validation window; validation only stops boosting and calibrates.

After the test, the deployed model is refit on every weekly cutoff up to T − step and calibrated on
T (`deploy_cutoffs`): more history and the most recent behaviour, as sklearn's `refit=True` does.
Its honest score is `tierwise backtest` on data after D.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from features.errors import InputError

MIN_HISTORY_DAYS = 56
MIN_TRAIN_CUTOFFS = 3


@dataclass(frozen=True)
class BacktestPlan:
    as_of: date
    horizon_days: int
    train: list[date]
    valid: date
    test: date
    deploy_train: list[date]

    @property
    def all_cutoffs(self) -> list[date]:
        return sorted({*self.train, self.valid, self.test, *self.deploy_train})


def plan(first_order: date, as_of: date, horizon_days: int, step_days: int = 7) -> BacktestPlan:
    """Cutoffs for a run as of `as_of`.

    Raises:
        InputError: the data holds too little history before `as_of` for the horizon, saying how much
            is needed.
    """
    step = timedelta(days=step_days)
    horizon = timedelta(days=horizon_days)
    test = as_of - horizon
    valid = test - horizon
    earliest = first_order + timedelta(days=MIN_HISTORY_DAYS)
    train = []
    cutoff = valid - step
    while cutoff >= earliest:
        train.append(cutoff)
        cutoff -= step
    if len(train) < MIN_TRAIN_CUTOFFS:
        needed = MIN_HISTORY_DAYS + (MIN_TRAIN_CUTOFFS) * step_days + 2 * horizon_days
        have = (as_of - first_order).days
        raise InputError(
            f"too little history for a {horizon_days}-day horizon: training as of {as_of} needs orders from "
            f"at least {needed} days before it ({as_of - timedelta(days=needed)}), the data starts "
            f"{first_order} ({have} days); use a shorter --horizon or a later --as-of"
        )
    deploy = []
    cutoff = test - step
    while cutoff >= earliest:
        deploy.append(cutoff)
        cutoff -= step
    return BacktestPlan(as_of, horizon_days, sorted(train), valid, test, sorted(deploy))
