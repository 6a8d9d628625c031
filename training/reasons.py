"""Why a model predicted what it did, in words staff can read.

LightGBM's per-prediction contributions (TreeSHAP, `ModelBundle.contributions`) say how much each
feature pushed a customer's raw score; `reasons` keeps the few largest and writes each as a sentence
with the value in its unit and the size of the push, the outcome worded as the model table words it:
"Days since the last order is 45 days: raises the churn probability by 12 points". The size is the
prediction with every contribution minus the prediction without this one (in points for
probabilities, in money for values).
"""

from __future__ import annotations

import calendar
import json
import math
import re
from collections.abc import Callable, Iterator
from functools import cache

import numpy as np

from features.catalog import FEATURES_BY_NAME
from features.model_table import MODELS
from training.bundle import ModelBundle

#: Feature views never given as reasons unless asked: household attributes (age, income, family)
#: are personal data, and a marketer should not act on them as "why".
SENSITIVE_VIEWS = frozenset({"household"})


def reasons(
    bundle: ModelBundle,
    matrix: np.ndarray,
    top: int = 3,
    contributions: np.ndarray | None = None,
    excluded_views: frozenset[str] = SENSITIVE_VIEWS,
) -> list[list[dict]]:
    """For each row, the `top` features with the largest absolute contribution to the raw score.

    Each reason: feature name, its description from the catalog, the value, whether it pushed the
    prediction up or down, and all of that as one sentence for staff. Pass `contributions` when
    already computed (`ModelBundle.predict_and_explain`). Features of `excluded_views` are never
    reasons (they still count in the prediction).
    """
    return [
        [
            {"feature": f, "description": d, "value": v, "effect": e, "size": s, "text": t}
            for f, d, v, e, s, t in row
        ]
        for row in _explained(bundle, matrix, top, contributions, excluded_views)
    ]


def reason_details(
    bundle: ModelBundle,
    matrix: np.ndarray,
    top: int = 3,
    contributions: np.ndarray | None = None,
    excluded_views: frozenset[str] = SENSITIVE_VIEWS,
) -> tuple[list[str], list[str]]:
    """Each row's reasons (`reasons`) twice: their sentences joined by " | " and the reasons
    themselves as a JSON list of the same objects (feature, description, value, effect, size, text).
    What a tier snapshot carries per customer, written without a dictionary per reason (scoring
    explains every customer); a number is written as Python writes it, so it reads back exactly."""
    sentences, details = [], []
    for row in _explained(bundle, matrix, top, contributions, excluded_views):
        sentences.append(" | ".join(reason[-1] for reason in row))
        details.append(
            "["
            + ",".join(
                f'{_json_head(name, description)}{_json_value(value)},"effect":"{effect}",'
                f'"size":{_json_value(size)},"text":{json.dumps(text, ensure_ascii=False)}}}'
                for name, description, value, effect, size, text in row
            )
            + "]"
        )
    return sentences, details


@cache
def _json_head(name: str, description: str) -> str:
    return (
        f'{{"feature":{json.dumps(name)},"description":{json.dumps(description, ensure_ascii=False)},"value":'
    )


def _json_value(value: float | str | None) -> str:
    """A value as JSON; a number that is not finite as null, as the API writes it."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return repr(value) if math.isfinite(value) else "null"


def _explained(
    bundle: ModelBundle,
    matrix: np.ndarray,
    top: int,
    contributions: np.ndarray | None,
    excluded_views: frozenset[str],
) -> Iterator[list[tuple]]:
    """Per row, its reasons as (feature, description, value, effect, size, text), largest
    contribution first."""
    if contributions is None:
        contributions = bundle.contributions(matrix)
    raw = contributions.sum(axis=1)  # every feature and the bias: the raw score of the prediction
    contributions = contributions[:, : len(bundle.feature_names)]
    allowed = np.array(
        [
            i
            for i, name in enumerate(bundle.feature_names)
            if name not in FEATURES_BY_NAME or FEATURES_BY_NAME[name].view not in excluded_views
        ],
        dtype=int,
    )
    order = allowed[np.argsort(-np.abs(contributions[:, allowed]), axis=1)[:, :top]]
    predicted = bundle.from_raw(raw)
    # Each reason's size: the prediction minus the prediction without its push, for all rows at once.
    all_sizes = predicted[:, None] - bundle.from_raw(
        raw[:, None] - np.take_along_axis(contributions, order, axis=1)
    )
    probability = MODELS[bundle.name].task == "classification"
    wording = MODELS[bundle.name].wording
    # What each column says, once per column; the picked columns, values, pushes and sizes as flat
    # Python lists, so the loop below touches no NumPy scalar (it runs for every customer of a scoring
    # pass). Flat, not a list per row: a million row lists outlived the garbage collector's young
    # generations and set off full passes over the heap, a third of the reasons' time.
    columns = {}
    for column in set(order.ravel().tolist()):
        name = bundle.feature_names[column]
        description = FEATURES_BY_NAME[name].description if name in FEATURES_BY_NAME else name
        columns[column] = (name, description, _plain(name, description), bundle.categories.get(name))
    picks = order.ravel().tolist()
    values = np.take_along_axis(matrix, order, axis=1).ravel().tolist()
    raises = (np.take_along_axis(contributions, order, axis=1) > 0).ravel().tolist()
    sizes = all_sizes.ravel().tolist()
    width = order.shape[1]
    for row in range(len(order)):
        start = row * width
        items = []
        for at in range(start, start + width):
            name, description, subject, categories = columns[picks[at]]
            value, size = values[at], sizes[at]
            shown = (
                None if math.isnan(value) else (categories[int(value)] if categories is not None else value)
            )
            effect = "raises" if raises[at] else "lowers"
            by = in_points(size) if probability else f"{abs(size):,.2f}"
            text = f"{subject} is {in_unit(name, shown)}: {effect} the {wording} by {by}"
            items.append((name, description, shown, effect, size, text))
        yield items


def in_points(size: float) -> str:
    """A change of probability in percentage points as a sentence ends: "12 points", "1 point", "less
    than 1 point" (a push that rounds to 0 still pushed)."""
    return _points(round(abs(size) * 100))


@cache
def _points(points: int) -> str:
    if points == 0:
        return "less than 1 point"
    return "1 point" if points == 1 else f"{points} points"


def _counted(value: float, unit: str) -> str:
    """A count with its unit, singular for one: "1 day", "45 days"."""
    text = f"{value:,.0f}"
    return f"{text} {unit}" if text == "1" else f"{text} {unit}s"


#: Staff wording for features whose catalog description is a formula.
PLAIN_NAMES = {
    "overdue_ratio": "Days since the last order relative to the usual gap between orders",
    "active_week_share_365d": "Share of weeks with an order",
    "spend_trend_90d": "Spend trend (last 90 days against the 90 before)",
    "orders_trend_90d": "Order trend (last 90 days against the 90 before)",
    "discount_rate_365d": "Share of the list price saved by discounts, 365 days",
    "home_ownership": "Home ownership",
}


@cache
def _plain(name: str, description: str) -> str:
    """A feature as the subject of a sentence: "Orders in the last 90 days"."""
    if name in PLAIN_NAMES:
        return PLAIN_NAMES[name]
    text = description.split(" (")[0].rstrip(".")
    text = re.sub(r"in the (\d+) days before as_of", r"in the last \1 days", text)
    text = text.replace("Days from the last order to as_of", "Days since the last order")
    return text.replace(" before as_of", "").replace("as_of", "today")


#: Features counted in whole units (the rest of the counts are named `orders_*`, `*_days*` ...).
COUNTS = (
    "active_weeks",
    "lines_",
    "items_",
    "coupon_redemptions",
    "campaigns_received",
    "new_products",
    "new_categories",
    "categories_",
    "departments_",
    "preferred_hour",
)
MONEY = ("spend", "value", "discount_365d")


def in_unit(name: str, value: float | str | None) -> str:
    """A feature's value as staff read it: "45 days", "12 orders", "1,234.50", "35%", "Monday", "1.8"."""
    if value is None:
        return "unknown"
    if isinstance(value, str):
        return value
    return _unit(name)(value)


@cache
def _unit(name: str) -> Callable[[float], str]:
    """How a feature's numbers read, decided once per feature (see `in_unit`)."""
    if name.startswith("preferred_weekday"):
        return lambda value: calendar.day_name[int(value) - 1]
    if any(word in name for word in ("share", "rate", "trend")):
        return lambda value: f"{value:.0%}"
    if "days" in name:
        return lambda value: _counted(value, "day")
    if name.startswith("orders_") and not name.startswith("orders_per"):
        return lambda value: _counted(value, "order")
    if name.startswith(COUNTS):
        return lambda value: f"{value:,.0f}"
    if any(word in name for word in MONEY) and "cv" not in name:
        return lambda value: f"{value:,.2f}"
    return lambda value: f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}"
