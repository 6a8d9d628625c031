"""Checks at the boundary of the tiering functions, so bad tables fail with the column's name."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from features.errors import InputError
from tiering.policy import Policy


def require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    """Raise `InputError` naming the columns of `frame` that are missing."""
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise InputError(f"{what}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")


def require_unique_customers(frame: pd.DataFrame, what: str) -> None:
    """Raise `InputError` naming a customer that appears twice."""
    duplicated = frame.customer_id[frame.customer_id.duplicated()]
    if not duplicated.empty:
        raise InputError(f"{what}: customer {duplicated.iloc[0]} appears more than once")


def customer_key(frame: pd.DataFrame) -> pd.Series:
    """Customer ids as strings, so ids read from CSV (`42`) match ids from Parquet (`"42"`)."""
    return frame.customer_id.astype(str)


def as_timestamps(values: pd.Series, what: str) -> pd.Series:
    """Dates (or date strings, or NaT) as normalized pandas timestamps."""
    try:
        return pd.to_datetime(values).dt.normalize()
    except (ValueError, TypeError) as exc:
        raise InputError(f"{what}: not a date: {exc}") from None


def require_policy_tiers(frame: pd.DataFrame, policy: Policy, what: str) -> None:
    """Raise `InputError` naming a tier of `frame` that `policy` does not have."""
    unknown = frame.tier[~frame.tier.isin(policy.tier_names)]
    if not unknown.empty:
        raise InputError(
            f"{what}: tier {unknown.iloc[0]!r} is not in policy {policy.name!r} "
            f"(tiers: {', '.join(policy.tier_names)})"
        )
