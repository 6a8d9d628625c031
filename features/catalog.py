"""The customer feature catalog: every feature's name, view, type, meaning and what data it needs.

Names carry window and unit (`orders_90d`, `spend_365d`, `days_since_last_order`). Windows end just
before `as_of`: `orders_90d` counts orders in [as_of - 90 days, as_of). The Feast views, the
feature services, `tierwise features list` and the SQL in `features.customer_features` all follow
this list; a test keeps the SQL's columns equal to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Needs(StrEnum):
    """What a dataset must have for a feature to exist (orders-only data has only ORDERS)."""

    ORDERS = "orders"
    LINES = "order lines"
    PRODUCTS = "product attributes"
    DISCOUNTS = "discounts"
    COUPONS = "campaigns and coupons"
    STORES = "store ids"
    HOUSEHOLDS = "household attributes"


@dataclass(frozen=True)
class Feature:
    name: str
    view: str
    dtype: str  # "float" or "string"
    description: str
    needs: Needs = Needs.ORDERS


WINDOWS = (7, 30, 60, 90, 180, 365)
VIEWS = ("rfm", "rhythm", "basket", "price_sensitivity", "habits", "household")


def _rfm() -> list[Feature]:
    features = [
        Feature("days_since_last_order", "rfm", "float", "Days from the last order to as_of (recency)."),
        Feature("tenure_days", "rfm", "float", "Days from the first order to as_of."),
        Feature("orders_lifetime", "rfm", "float", "Orders before as_of."),
        Feature("spend_lifetime", "rfm", "float", "Spend before as_of."),
    ]
    for days in WINDOWS:
        features.append(
            Feature(f"orders_{days}d", "rfm", "float", f"Orders in the {days} days before as_of.")
        )
        features.append(Feature(f"spend_{days}d", "rfm", "float", f"Spend in the {days} days before as_of."))
    features += [
        Feature("avg_order_value_365d", "rfm", "float", "Mean order amount over 365 days."),
        Feature(
            "order_value_cv_365d", "rfm", "float", "Coefficient of variation of order amounts, 365 days."
        ),
    ]
    return features


def _rhythm() -> list[Feature]:
    return [
        Feature(
            "interorder_days_mean", "rhythm", "float", "Mean days between consecutive orders (lifetime)."
        ),
        Feature("interorder_days_std", "rhythm", "float", "Standard deviation of days between orders."),
        Feature(
            "overdue_ratio", "rhythm", "float", "days_since_last_order / interorder_days_mean: >1 means late."
        ),
        Feature("active_weeks_365d", "rhythm", "float", "Distinct weeks with an order, 365 days."),
        Feature(
            "active_week_share_365d",
            "rhythm",
            "float",
            "Share of the weeks since the first order (at most 52) that had an order.",
        ),
        Feature("orders_per_active_week_365d", "rhythm", "float", "Orders per week with an order, 365 days."),
        Feature(
            "spend_trend_90d",
            "rhythm",
            "float",
            "(spend last 90 d - spend the 90 d before) / their sum, in [-1, 1]; 0 when both are 0.",
        ),
        Feature("orders_trend_90d", "rhythm", "float", "The same trend for order counts."),
    ]


def _basket() -> list[Feature]:
    lines, products = Needs.LINES, Needs.PRODUCTS
    return [
        Feature("items_per_order_365d", "basket", "float", "Units per order, 365 days.", lines),
        Feature(
            "products_per_order_365d", "basket", "float", "Distinct products per order, 365 days.", lines
        ),
        Feature("new_products_90d", "basket", "float", "Products first bought in the last 90 days.", lines),
        Feature(
            "new_product_rate_90d",
            "basket",
            "float",
            "New products per order line in the last 90 days (new-product adoption).",
            lines,
        ),
        Feature("categories_90d", "basket", "float", "Distinct categories bought, 90 days.", products),
        Feature("categories_365d", "basket", "float", "Distinct categories bought, 365 days.", products),
        Feature("departments_90d", "basket", "float", "Distinct departments bought, 90 days.", products),
        Feature("departments_365d", "basket", "float", "Distinct departments bought, 365 days.", products),
        Feature(
            "new_categories_90d", "basket", "float", "Categories first bought in the last 90 days.", products
        ),
        Feature(
            "top_department_share_365d",
            "basket",
            "float",
            "Share of 365-day spend in the customer's largest department.",
            products,
        ),
        Feature(
            "top3_department_share_365d",
            "basket",
            "float",
            "Share of 365-day spend in the customer's three largest departments.",
            products,
        ),
    ]


def _price_sensitivity() -> list[Feature]:
    view = "price_sensitivity"
    return [
        Feature(
            "discounted_spend_share_365d",
            view,
            "float",
            "Share of 365-day spend on discounted lines (orders, for orders-only data).",
            Needs.DISCOUNTS,
        ),
        Feature(
            "discount_rate_365d",
            view,
            "float",
            "Discounts / (spend + discounts), 365 days: how much of the list price was saved.",
            Needs.DISCOUNTS,
        ),
        Feature("coupon_redemptions_365d", view, "float", "Coupons redeemed, 365 days.", Needs.COUPONS),
        Feature(
            "campaigns_received_365d",
            view,
            "float",
            "Campaigns received that started within 365 days.",
            Needs.COUPONS,
        ),
        Feature(
            "coupon_redemption_rate_365d",
            view,
            "float",
            "Coupon redemptions per campaign received, 365 days (null without campaigns).",
            Needs.COUPONS,
        ),
        Feature(
            "private_label_share_365d",
            view,
            "float",
            "Share of 365-day spend on private-label products.",
            Needs.PRODUCTS,
        ),
    ]


def _habits() -> list[Feature]:
    return [
        Feature(
            "morning_order_share_365d",
            "habits",
            "float",
            "Share of orders placed 05:00-11:59 (shop's local time, as all habits), 365 days.",
        ),
        Feature(
            "afternoon_order_share_365d", "habits", "float", "Share of orders placed 12:00-16:59, 365 days."
        ),
        Feature(
            "evening_order_share_365d", "habits", "float", "Share of orders placed 17:00-21:59, 365 days."
        ),
        Feature("night_order_share_365d", "habits", "float", "Share of orders placed 22:00-04:59, 365 days."),
        Feature(
            "weekend_order_share_365d",
            "habits",
            "float",
            "Share of orders placed Saturday or Sunday, 365 days.",
        ),
        Feature(
            "preferred_hour_365d", "habits", "float", "Most frequent hour of day of orders (0-23), 365 days."
        ),
        Feature(
            "preferred_weekday_365d",
            "habits",
            "float",
            "Most frequent day of the week of orders (1 Monday - 7 Sunday; ties to the earlier day), 365 days.",
        ),
        Feature(
            "top_department_365d",
            "habits",
            "string",
            "Department with the most spend, 365 days (ties to the first name).",
            Needs.PRODUCTS,
        ),
        Feature(
            "main_store_id",
            "habits",
            "string",
            "Store or community with the most orders, 365 days.",
            Needs.STORES,
        ),
    ]


def _household() -> list[Feature]:
    def attr(name: str, meaning: str) -> Feature:
        return Feature(name, "household", "string", meaning, Needs.HOUSEHOLDS)

    return [
        attr("age_band", "Age band of the head of household."),
        attr("income_band", "Household income band."),
        attr("household_size", "People in the household."),
        attr("kids_count", "Children in the household."),
        attr("home_ownership", "Homeowner, renter, ..."),
        attr("marital_status", "Married or unmarried."),
    ]


FEATURES: tuple[Feature, ...] = (
    *_rfm(),
    *_rhythm(),
    *_basket(),
    *_price_sensitivity(),
    *_habits(),
    *_household(),
)
FEATURES_BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}


def view_features(view: str) -> list[Feature]:
    """Features of one Feast view, in catalog order."""
    return [f for f in FEATURES if f.view == view]
