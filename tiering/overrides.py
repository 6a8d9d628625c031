"""Manual tier overrides: staff decisions (a complaint, a key account) that win over the policy for a while.

Every override carries an expiry date, so no decision outlives its reason unnoticed: an unexpired
override wins over the policy and retention and is reported as change "override" with its note as
the reason; an expired one is ignored (and so is an override naming a customer who was not scored).
An override is in force through its `expires` date. When it lapses, retention does not protect the
overridden tier (see `tiering.retention`).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from features.errors import InputError
from features.files import read_yaml
from tiering.policy import Policy
from tiering.table_checks import as_timestamps, customer_key, require_columns

COLUMNS = ["customer_id", "tier", "expires", "note"]


class Override(BaseModel):
    """One row of an overrides file."""

    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True)

    customer_id: str = Field(min_length=1)
    tier: str = Field(min_length=1)
    expires: date
    note: str = ""


def load_overrides(path: str | Path) -> pd.DataFrame:
    """Overrides from a CSV file (header customer_id,tier,expires,note) or a YAML list of mappings.

    Returns:
        customer_id (str), tier, expires (timestamp), note ("" when not given).

    Raises:
        InputError: the file is missing or of another type, or a row is invalid (the message names
            the file, the line or item, and the field).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"{path}: no such overrides file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows = pd.read_csv(path, dtype=str, keep_default_na=False).to_dict("records")
        places = [f"line {i + 2}" for i in range(len(rows))]
    elif suffix in (".yaml", ".yml"):
        rows = _yaml_rows(path)
        places = [f"overrides[{i}]" for i in range(len(rows))]
    else:
        raise InputError(f"{path}: unsupported overrides file; use CSV (.csv) or YAML (.yaml, .yml)")
    overrides = [_parse_row(row, f"{path}: {place}") for row, place in zip(rows, places, strict=True)]
    frame = pd.DataFrame([override.model_dump() for override in overrides], columns=COLUMNS)
    frame["expires"] = pd.to_datetime(frame.expires)
    return frame


def _yaml_rows(path: Path) -> list[Any]:
    data = read_yaml(path)
    if isinstance(data, dict) and set(data) == {"overrides"}:
        data = data["overrides"]
    if data is None:
        return []
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a list of overrides (customer_id, tier, expires, note)")
    return data


def _parse_row(row: Any, place: str) -> Override:
    try:
        return Override.model_validate(row)
    except ValidationError as exc:
        customer = row.get("customer_id") if isinstance(row, dict) else None
        where = f"{place} (customer {customer})" if customer not in (None, "") else place
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'row'}: {error['msg']}"
            for error in exc.errors()
        )
        raise InputError(f"{where}: {problems}") from None


def apply_overrides(
    tiers: pd.DataFrame, overrides: pd.DataFrame, as_of: date, *, policy: Policy
) -> pd.DataFrame:
    """`tiers` with each unexpired override applied.

    Args:
        tiers: `apply_retention` (or `assign_tiers`) output: customer_id, tier, tier_rank; `change`
            and `reason` are set (added if absent), `below_since` cleared for overridden customers.
        overrides: customer_id, tier, expires (date, in force through that day), note (optional),
            e.g. from `load_overrides`.
        as_of: The date of this run; overrides with `expires` before it are ignored.
        policy: The policy whose tiers the overrides must name.

    Returns:
        A new frame like `tiers`; overridden customers get the override's tier and rank, change
        "override" and the note as reason ("manual override until YYYY-MM-DD" without a note).

    Raises:
        InputError: a column is missing, an unexpired override names a tier the policy does not have
            (the message names the customer and the tier), has no expiry date, or two unexpired
            overrides name the same customer.
    """
    require_columns(tiers, ["customer_id", "tier", "tier_rank"], "tiers")
    require_columns(overrides, ["customer_id", "tier", "expires"], "overrides")
    active = _active(overrides, pd.Timestamp(as_of).normalize(), policy)
    result = tiers.copy()
    for column in ("change", "reason"):
        if column not in result.columns:
            result[column] = ""
    key = customer_key(tiers)
    hit = key.isin(active.key).to_numpy()
    chosen = active.set_index("key").loc[key[hit]]
    result.loc[hit, "tier"] = chosen.tier.to_numpy()
    result.loc[hit, "tier_rank"] = chosen.tier.map(policy.ranks).to_numpy()
    result.loc[hit, "change"] = "override"
    result.loc[hit, "reason"] = chosen.reason.to_numpy()
    if "below_since" in result.columns:
        result.loc[hit, "below_since"] = pd.NaT
    return result


def _active(overrides: pd.DataFrame, today: pd.Timestamp, policy: Policy) -> pd.DataFrame:
    """The unexpired overrides, validated: key, tier, reason."""
    expires = as_timestamps(overrides.expires, "overrides: expires")
    if expires.isna().any():
        raise InputError(
            f"overrides: customer {overrides.customer_id[expires.isna()].iloc[0]} has no expires date"
        )
    live = overrides[(expires >= today).to_numpy()]
    unknown = live[~live.tier.isin(policy.tier_names)]
    if not unknown.empty:
        row = unknown.iloc[0]
        raise InputError(
            f"override for customer {row.customer_id}: unknown tier {row.tier!r} "
            f"(policy {policy.name!r} has {', '.join(policy.tier_names)})"
        )
    keys = customer_key(live)
    if keys.duplicated().any():
        raise InputError(
            f"overrides: customer {keys[keys.duplicated()].iloc[0]} has more than one unexpired override"
        )
    notes = live["note"].fillna("").astype(str) if "note" in live.columns else pd.Series("", index=live.index)
    until = expires[live.index].dt.strftime("%Y-%m-%d")
    return pd.DataFrame(
        {
            "key": keys.to_numpy(),
            "tier": live.tier.to_numpy(),
            "reason": notes.where(notes.str.strip() != "", "manual override until " + until).to_numpy(),
        }
    )
