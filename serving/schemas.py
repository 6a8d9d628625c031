"""The HTTP contract of the prediction service: request and response bodies as pydantic models.

Field descriptions and examples end up in the OpenAPI page BentoML serves, so a backend engineer can
read the contract there instead of in our code. Bodies are flat (`{"customer_id": "42"}`), as one
would write them by hand.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

Status = Literal["ok", "cold_start", "not_found"]
#: A customer id as shops write them: letters, digits and `. _ : @ + -`, at most 128 characters.
CustomerId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\w.:@+-]+$", examples=["1002"])]
#: Most features in one `score_features` vector (the catalog has 58).
MAX_FEATURES = 100
#: Longest text feature value (a store id, an income band).
MAX_TEXT_VALUE = 64
FeatureValue = float | int | Annotated[str, Field(max_length=MAX_TEXT_VALUE)] | None


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: CustomerId = Field(description="The shop's customer id.")
    new_customer: StrictBool = Field(
        False,
        description=(
            "Set when the backend knows the account exists but it may have no orders in the feature "
            "store yet (signed up today, first basket). An id without features then gets the "
            "cold-start answer instead of not-found."
        ),
    )


class PredictBatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_ids: list[CustomerId] = Field(
        min_length=1,
        description="Customer ids; at most the service's batch limit (default 1,000). Duplicates are answered once each.",
        examples=[["1002", "1003", "unknown-id"]],
    )
    new_customers: StrictBool = Field(False, description="As `new_customer` of `predict`, for every id.")


class ScoreFeaturesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: CustomerId = Field(
        "what-if", description="A label echoed in the answer; need not exist in the store."
    )
    features: dict[Annotated[str, Field(max_length=64)], FeatureValue] = Field(
        max_length=MAX_FEATURES,
        description=(
            "Feature values by catalog name (`tierwise features list`). The history features the tier "
            "policy reads (days_since_last_order, tenure_days, orders_365d) are required; every other "
            "feature may be left out (treated as missing). Unknown names are rejected."
        ),
        examples=[{"days_since_last_order": 12, "tenure_days": 400, "orders_365d": 30, "spend_365d": 1450.0}],
    )


class Reason(BaseModel):
    feature: str = Field(description="Catalog feature name.", examples=["days_since_last_order"])
    description: str = Field(description="What the feature measures, in words.")
    value: float | str | None = Field(description="The customer's value (None = missing).")
    effect: Literal["raises", "lowers"] = Field(description="Direction this feature pushed the prediction.")
    size: float = Field(
        description=(
            "How far it moved the prediction: the prediction minus the prediction without this feature's "
            "push (0.04 = 4 points of probability; an amount for the expected value)."
        ),
        examples=[0.12],
    )
    text: str = Field(
        description="One sentence for staff, the value in its unit and the size of the push.",
        examples=["Days since the last order is 45 days: raises the churn probability by 12 points"],
    )


class Persona(BaseModel):
    id: int = Field(
        description="Persona id; stable across refits (matched to the previous centres).", examples=[3]
    )
    name: str = Field(
        description="What sets the persona apart, in words (or staff's name for it).",
        examples=["Evening, promotion-hunting shoppers"],
    )


class Offer(BaseModel):
    item: str = Field(description="A product category to offer.", examples=["FROZEN PIZZA"])
    reason: str = Field(description="Why it is offered, in words.", examples=["bought with BAG SNACKS"])


class Prediction(BaseModel):
    customer_id: str
    status: Status = Field(
        description="ok; cold_start (no features yet: the documented prior, see `cold_start_rule`); not_found."
    )
    churn_probability: float | None = Field(
        None, description="Probability of no order in the next `horizon_days`.", examples=[0.07]
    )
    expected_value: float | None = Field(
        None,
        description="Expected spend in the next `horizon_days`, in the data's currency.",
        examples=[412.5],
    )
    expected_value_interval: list[float] | None = Field(
        None,
        description="80% interval of the expected value (conformalized quantile models): low, high.",
        examples=[[120.0, 610.0]],
    )
    growth_potential: float | None = Field(
        None,
        description=(
            "Probability that a customer active in the last `horizon_days` grows in the next: at least the "
            "same spend, with clearly more orders (1.5x, 2 more), larger baskets (1.3x) or more departments "
            "(1.2x, 2 more). Null for customers without an order in the last `horizon_days` (for them the "
            "question is reactivation: see `churn_probability`)."
        ),
        examples=[0.31],
    )
    p_order_7d: float | None = Field(
        None, description="Probability of an order within 7 days (next-order model).", examples=[0.41]
    )
    p_order_30d: float | None = Field(
        None, description="Probability of an order within 30 days.", examples=[0.88]
    )
    expected_next_order_days: float | None = Field(
        None,
        description=(
            "Days until the customer is as likely as not to have ordered (the median); null when that is "
            "beyond the model's horizon (an order is not expected within it)."
        ),
        examples=[6.5],
    )
    expected_next_order_date: date | None = Field(
        None, description="`features_as_of` plus `expected_next_order_days`.", examples=["2017-12-09"]
    )
    horizon_days: int | None = Field(None, description="The horizon the models look ahead.", examples=[92])
    tier: str | None = Field(None, description="Tier under the serving policy.", examples=["Gold"])
    tier_rule: str | None = Field(None, description="Why this tier, in words.")
    tier_source: Literal["snapshot", "event", "policy", "cold_start"] | None = Field(
        None,
        description=(
            "snapshot: the latest batch tier snapshot (with retention and overrides); event: an order "
            "since the snapshot updated the features, the policy tiered them and retention started from "
            "the snapshot tier (upgrades at once, a downgrade after its grace); policy: the policy "
            "applied to this answer against the snapshot's population (customers not in the snapshot, "
            "what-if vectors); cold_start: the policy's tier for new customers."
        ),
    )
    persona: Persona | None = Field(
        None,
        description=(
            "How the customer shops (`tierwise personas fit`): from the batch snapshot for customers in it, "
            "else the persona model applied to this answer's features; null before personas are fitted."
        ),
    )
    offers: list[Offer] | None = Field(
        None,
        description=(
            "Up to 5 categories to offer, best first, from the batch snapshot (basket companions of the "
            "customer's staples, what their persona and the tier above buy; never what they already buy "
            "often). Null with `offers_note` saying why."
        ),
    )
    offers_note: str | None = Field(None, description="Why there are no offers, when there are none.")
    risk_flags: list[str] = Field(default_factory=list, examples=[["high_value_at_risk"]])
    reasons: dict[str, list[Reason]] = Field(
        default_factory=dict, description="Per model, the features that moved its prediction most."
    )
    model_versions: dict[str, int] = Field(
        default_factory=dict,
        description="Registry version of each champion that answered (models without one are absent).",
        examples=[{"churn": 3, "customer_value": 2}],
    )
    model_sources: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Per model, what answered its field: `champion v3`; `baseline: btyd_p_no_order` (or "
            "`baseline: btyd_expected_value`) while the model has no champion because its first version "
            "did not beat that baseline — no reasons and no value interval then; `none` when no "
            "baseline gives the model's output (its field is null)."
        ),
        examples=[{"churn": "baseline: btyd_p_no_order", "customer_value": "champion v2"}],
    )
    features_as_of: date | None = Field(None, description="Date of the feature snapshot the answer used.")
    error: str | None = Field(None, description="For not_found: what was missing.")


class PredictBatchResponse(BaseModel):
    predictions: list[Prediction]
    found: int = Field(description="Items with status ok.")
    cold_start: int
    not_found: int


class ModelInfo(BaseModel):
    name: str
    version: int | None = Field(description="The champion's registry version; null without a champion.")
    run_id: str | None = Field(
        description="The champion's training run, or the run whose baseline answers for the model."
    )
    source: str = Field(
        description="What answers the model: `champion v3`, `baseline: btyd_p_no_order`, or `none`.",
        examples=["champion v3"],
    )


class VersionResponse(BaseModel):
    service: str = Field(description="Tierwise package version.")
    models: list[ModelInfo]
    policy: str
    features_as_of: date | None
    tiers_as_of: date | None
    loaded_at: str = Field(description="When the live models were loaded (UTC, ISO 8601).")
    last_reload_error: str | None = Field(
        None, description="Why the last reload failed (the previous models kept serving), if it did."
    )


class OrdersRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    orders: list[Any] = Field(
        min_length=1,
        description=(
            "Order events in the canonical order schema: `order_id`, `customer_id`, `ordered_at` "
            "(ISO-8601; without an offset it is the shop's local time), `amount`, and optionally "
            "`discount`, `coupon_discount`, `items`, `store_id`; or, instead of the amounts, `lines`: "
            "each with `product_id`, `quantity`, `amount` and optionally `discount`, "
            "`coupon_discount`, `department`, `category`, `subcategory`, `brand`, `is_private_label`. "
            "Every event is checked as the import checks a row; sending an event again changes nothing."
        ),
        examples=[
            [
                {
                    "order_id": "web-91823",
                    "customer_id": "1002",
                    "ordered_at": "2018-01-03T18:05:00+01:00",
                    "lines": [{"product_id": "1004906", "quantity": 2, "amount": 3.58}],
                }
            ]
        ],
    )


class OrderOutcome(BaseModel):
    index: int = Field(description="Position of the event in the request.")
    status: Literal["accepted", "present", "refused"] = Field(
        description="accepted: logged and applied; present: the same order was already known; refused: kept in quarantine."
    )
    order_id: str | None = None
    customer_id: str | None = None
    reason: str | None = Field(None, description="Why it was refused (the import's quarantine reasons).")
    field: str | None = Field(None, description="The field the reason is about, e.g. `lines[1].quantity`.")
    message: str | None = Field(None, description="The reason in words.")


class TierChangeOut(BaseModel):
    customer_id: str
    order_id: str = Field(description="The order that moved the tier.")
    from_tier: str | None
    to_tier: str
    reason: str


class OrdersResponse(BaseModel):
    accepted: int
    present: int
    refused: int
    results: list[OrderOutcome]
    tier_changes: list[TierChangeOut] = Field(description="Tiers these orders changed, at once.")

    @classmethod
    def from_receipt(cls, receipt: Any) -> OrdersResponse:
        """The answer for a `serving.events.Receipt`."""
        from dataclasses import asdict

        return cls(
            accepted=receipt.count("accepted"),
            present=receipt.count("present"),
            refused=receipt.count("refused"),
            results=[OrderOutcome.model_validate(asdict(o)) for o in receipt.outcomes],
            tier_changes=[TierChangeOut.model_validate(asdict(c)) for c in receipt.tier_changes],
        )
