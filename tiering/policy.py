"""Tier policies as typed configuration, so the service and batch scoring cut tiers by the same rules.

A policy is business logic a merchandiser may want to tune (shares, recency windows, weights) without
touching code, so it lives in YAML; but a typo must not silently change who is Platinum, so every file
is validated into frozen pydantic models at load, and a bad file raises `InputError` naming the field
path (`tiers[1].share: must be between 0 and 1`) and the file.

A policy lists its tiers best first; `tier_rank` is the position in that list (0 = best). Two kinds:

- *value tiers* are rewards cut by score: the top `share` of the customers who reach them (or every
  customer whose score is at least `min_value`), optionally only if they ordered within
  `max_days_since_last_order` days. The last value tier takes the rest and has no threshold.
- *state tiers* are lifecycle facts checked before any value tier: `state: new` (tenure below
  `new_customer_days`: too young to judge) and `state: inactive` (no order for more than
  `days_since_last_order_over` days). They follow the value tiers, from least to most serious.

Two presets ship as YAML next to this module (`presets/lifecycle.yaml`, `presets/rfmp.yaml`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from features.config_errors import validated
from features.errors import InputError
from features.files import read_yaml

PRESETS_DIR = Path(__file__).parent / "presets"
PRESETS = ("lifecycle", "rfmp")
WEIGHT_TOLERANCE = 1e-6
#: What a policy name may be: it becomes a folder name in the home.
SAFE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"


class _Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Weights(_Config):
    """Weights of the four RFMP components; they must add up to 1 (within 1e-6)."""

    recency: float = Field(0.30, ge=0, le=1)
    frequency: float = Field(0.25, ge=0, le=1)
    monetary: float = Field(0.30, ge=0, le=1)
    potential: float = Field(0.15, ge=0, le=1)

    @model_validator(mode="after")
    def _add_up_to_one(self) -> Weights:
        total = self.recency + self.frequency + self.monetary + self.potential
        if abs(total - 1) > WEIGHT_TOLERANCE:
            parts = ", ".join(f"{name} {value:g}" for name, value in self.as_dict().items())
            raise ValueError(f"must add up to 1, got {total:g} ({parts})")
        return self

    def as_dict(self) -> dict[str, float]:
        return {
            "recency": self.recency,
            "frequency": self.frequency,
            "monetary": self.monetary,
            "potential": self.potential,
        }


class Benefit(_Config):
    """What a tier's customers get, and what it costs per customer over a horizon.

    Attributes:
        name: As staff and the CRM see it ("free delivery").
        kind: discount, voucher, points, delivery, coupon, gift or service.
        cost_per_customer: Expected cost per customer of the tier, in the data's currency.
    """

    name: str = Field(min_length=1, max_length=100)
    kind: Literal["discount", "voucher", "points", "delivery", "coupon", "gift", "service"]
    cost_per_customer: float = Field(0.0, ge=0)


class Tier(_Config):
    """One tier: a value tier (no `state`) or a lifecycle state tier.

    Attributes:
        name: Shown to customers and staff; unique within the policy.
        description: One line for reports.
        share: Value tiers: this tier's share of the customers reaching the value tiers, in (0, 1]
            (0.05 = the top 5%; the next tier's share starts below it).
        min_value: Value tiers: the lowest score that qualifies (instead of `share`).
        max_days_since_last_order: Value tiers: the customer must have ordered within this many days;
            otherwise they fall to the next tier whose recency condition holds.
        state: "new" or "inactive" for lifecycle state tiers.
        days_since_last_order_over: Inactive states: no order for more than this many days.
        benefits: What the tier's customers get (shown in the report, exported with campaign lists).
    """

    name: str = Field(min_length=1)
    description: str = ""
    share: float | None = None
    min_value: float | None = None
    max_days_since_last_order: int | None = Field(None, ge=0)
    state: Literal["new", "inactive"] | None = None
    days_since_last_order_over: int | None = Field(None, ge=0)
    benefits: tuple[Benefit, ...] = ()

    @field_validator("share")
    @classmethod
    def _share_in_range(cls, share: float | None) -> float | None:
        if share is not None and not 0 < share <= 1:
            raise ValueError(f"must be between 0 and 1 (0.05 is the top 5%), got {share:g}")
        return share

    @property
    def is_state(self) -> bool:
        return self.state is not None

    @property
    def benefit_names(self) -> str:
        """The benefits as one line ("free delivery; double points"); empty without benefits."""
        return "; ".join(benefit.name for benefit in self.benefits)

    @property
    def benefit_cost(self) -> float:
        """Cost of the tier's benefits per customer."""
        return sum(benefit.cost_per_customer for benefit in self.benefits)


class Policy(_Config):
    """A complete tier policy.

    Attributes:
        name: The policy's name everywhere (preset name, API field, report). It names folders of the
            home (`data/tiers/<name>/`), so it is a plain name: letters, digits, `_` and `-`.
        description: One paragraph for reports and the API docs.
        scoring: "value" ranks by one value (predicted or past spend); "rfmp" by a weighted score of
            recency, frequency, monetary value and potential, each a percentile rank in [0, 1].
        weights: RFMP weights (only with `scoring: rfmp`; default 0.30/0.25/0.30/0.15).
        tiers: Best first; value tiers, then state tiers. `tier_rank` is the position here.
        new_customer_days: A `state: new` tier holds customers whose tenure is below this many days.
        immediate_tiers: Tiers entered (or left) at once, bypassing the retention grace: lifecycle
            facts such as New, Dormant and Churned, not rewards to protect.
        grace_days: How long a customer keeps a tier after their policy tier drops below it.
    """

    name: str = Field(pattern=SAFE_NAME, max_length=64)
    description: str = ""
    scoring: Literal["value", "rfmp"]
    weights: Weights | None = None
    tiers: tuple[Tier, ...] = Field(min_length=1)
    new_customer_days: int = Field(30, ge=0)
    immediate_tiers: tuple[str, ...] = ()
    grace_days: int = Field(30, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        problems = _tier_problems(self.tiers) + _policy_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def tier_names(self) -> list[str]:
        return [tier.name for tier in self.tiers]

    @property
    def ranks(self) -> dict[str, int]:
        """Tier name to `tier_rank` (0 = best)."""
        return {tier.name: rank for rank, tier in enumerate(self.tiers)}

    def tier(self, name: str) -> Tier:
        """The tier called `name` (an `InputError` naming the policy's tiers otherwise)."""
        for tier in self.tiers:
            if tier.name == name:
                return tier
        raise InputError(f"policy {self.name}: no tier {name!r} (tiers: {', '.join(self.tier_names)})")

    @property
    def value_tiers(self) -> list[Tier]:
        return [tier for tier in self.tiers if not tier.is_state]

    @property
    def state_tiers(self) -> list[Tier]:
        return [tier for tier in self.tiers if tier.is_state]

    @property
    def tier_above(self) -> dict[str, str | None]:
        """The tier a step up from each tier: the next better value tier; the lowest value tier for the
        state tiers (a new or lapsed customer's next step); None for the best tier. Offers use it
        ("what customers a step up buy")."""
        values = [tier.name for tier in self.value_tiers]
        above: dict[str, str | None] = {name: values[i - 1] if i else None for i, name in enumerate(values)}
        return above | {tier.name: values[-1] if values else None for tier in self.state_tiers}

    @property
    def rfmp_weights(self) -> Weights:
        """The RFMP weights, defaults filled in."""
        return self.weights or Weights()

    @property
    def cut_by_share(self) -> bool:
        """Whether value tiers are cut by share (else by `min_value`)."""
        return any(tier.share is not None for tier in self.value_tiers)


def _tier_problems(tiers: tuple[Tier, ...]) -> list[str]:
    """Checks on each tier that depend on its kind; paths name the tier's position."""
    problems = []
    for index, tier in enumerate(tiers):
        at = f"tiers[{index}]"
        value_fields = ("share", "min_value", "max_days_since_last_order")
        if tier.is_state:
            problems += [
                f"{at}.{field}: a state tier ({tier.state}) has no {field}"
                for field in value_fields
                if getattr(tier, field) is not None
            ]
        if tier.state == "inactive" and tier.days_since_last_order_over is None:
            problems.append(f"{at}.days_since_last_order_over: required for an inactive state")
        if tier.state != "inactive" and tier.days_since_last_order_over is not None:
            problems.append(f"{at}.days_since_last_order_over: only for `state: inactive` tiers")
        if tier.share is not None and tier.min_value is not None:
            problems.append(f"{at}: give share or min_value, not both")
    return problems


def _policy_problems(policy: Policy) -> list[str]:
    """Checks across tiers: order best first, one kind of threshold, a catch-all, full coverage."""
    tiers, problems = policy.tiers, []
    names = [tier.name for tier in tiers]
    problems += [
        f"tiers[{i}].name: {name!r} is used twice" for i, name in enumerate(names) if name in names[:i]
    ]
    kinds = [tier.is_state for tier in tiers]
    if kinds != sorted(kinds):
        first_state = kinds.index(True)
        problems.append(
            f"tiers[{first_state}]: tiers go best first: value tiers, then lifecycle states "
            f"(a value tier follows state {tiers[first_state].name!r})"
        )
    values = [(i, tier) for i, tier in enumerate(tiers) if not tier.is_state]
    if not values:
        return [*problems, "tiers: at least one value tier (without `state`) is needed"]
    problems += _threshold_problems(values)
    problems += _state_order_problems(tiers, values[-1][1])
    problems += [
        f"immediate_tiers: {name!r} is not a tier of this policy (tiers: {', '.join(names)})"
        for name in policy.immediate_tiers
        if name not in names
    ]
    if policy.scoring != "rfmp" and policy.weights is not None:
        problems.append("weights: only used with `scoring: rfmp`")
    return problems


def _threshold_problems(values: list[tuple[int, Tier]]) -> list[str]:
    problems = []
    *ranked, (last_index, last) = values
    if last.share is not None or last.min_value is not None:
        problems.append(
            f"tiers[{last_index}]: the last value tier takes the rest; it has no share or min_value"
        )
    problems += [
        f"tiers[{i}]: give a share or a min_value (only the last value tier takes the rest)"
        for i, tier in ranked
        if tier.share is None and tier.min_value is None
    ]
    if any(t.share is not None for _, t in ranked) and any(t.min_value is not None for _, t in ranked):
        problems.append("tiers: cut all value tiers by share or all by min_value, not a mix")
    total = sum(tier.share or 0 for _, tier in ranked)
    if total > 1 + WEIGHT_TOLERANCE:
        problems.append(f"tiers: the value tiers' shares add up to {total:g}; at most 1")
    with_min = [(i, tier.min_value) for i, tier in ranked if tier.min_value is not None]
    problems += [
        f"tiers[{i}].min_value: tiers go best first, so {value:g} must be below the previous {before:g}"
        for (_, before), (i, value) in zip(with_min, with_min[1:], strict=False)
        if value >= before
    ]
    return problems


def _state_order_problems(tiers: tuple[Tier, ...], catch_all: Tier) -> list[str]:
    problems = []
    inactive = [(i, t.days_since_last_order_over) for i, t in enumerate(tiers) if t.state == "inactive"]
    problems += [
        f"tiers[{i}].days_since_last_order_over: states go from least to most serious, so {days} must "
        f"be above the previous {before}"
        for (_, before), (i, days) in zip(inactive, inactive[1:], strict=False)
        if None not in (before, days) and days <= before
    ]
    news = [i for i, tier in enumerate(tiers) if tier.state == "new"]
    problems += [f"tiers[{i}].state: only one `state: new` tier" for i in news[1:]]
    cap = catch_all.max_days_since_last_order
    shortest = min((days for _, days in inactive if days is not None), default=None)
    if cap is not None and (shortest is None or shortest > cap):
        problems.append(
            f"tiers: {catch_all.name!r} (the last value tier) needs an order within {cap} days, so an "
            f"inactive state with days_since_last_order_over <= {cap} must catch everyone else"
        )
    return problems


def parse_policy(data: Any, source: str = "policy") -> Policy:
    """Validate a mapping (parsed YAML) into a `Policy`.

    Raises:
        InputError: naming `source` and each bad field path, e.g. `tiers[1].share: must be between 0
            and 1`.
    """
    return validated(Policy, data, source, "policy")


def load_policy(name_or_path: str | Path) -> Policy:
    """A preset by name (`lifecycle`, `rfmp`) or a policy YAML file.

    Raises:
        InputError: the name is neither a preset nor an existing file, the file is not valid YAML, or
            a field is wrong (the message names the field path and the file).
    """
    text = str(name_or_path)
    if isinstance(name_or_path, str) and text in PRESETS:
        path = PRESETS_DIR / f"{text}.yaml"
    else:
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise InputError(f"tier policy {text!r}: not a preset ({', '.join(PRESETS)}) and no such file")
    return parse_policy(read_yaml(path), source=str(path))
