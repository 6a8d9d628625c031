"""The growth label, checked on a hand-made shop: growth of active customers against their own last
window, on frequency, basket or breadth, with no label for lapsed customers."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.data.duck import connect
from features.data.store import DataStore
from features.settings import Settings
from features.snapshots import register_canonical_views
from pipelines.import_data import import_file
from training.labels import compute_labels, is_active, labelled

CUTOFF = date(2024, 3, 1)
HORIZON = 30
BEFORE = datetime(2024, 2, 5, 10)  # in the 30 days before the cutoff
AFTER = datetime(2024, 3, 5, 10)  # in the 30 days after it

#: customer: (orders before as [(amount, departments)], orders after, the expected growth label).
SHOP: dict[str, tuple[list, list, float]] = {
    "steady": ([(50, "A"), (50, "A")], [(50, "A"), (50, "A")], 0),
    "one_more_order": ([(50, "A"), (50, "A")], [(50, "A"), (50, "A"), (50, "A")], 0),
    "more_often": ([(50, "A"), (50, "A")], [(50, "A")] * 4, 1),
    "bigger_baskets": ([(50, "A"), (50, "A")], [(70, "A"), (70, "A")], 1),
    "wider": ([(50, "A"), (50, "A")], [(50, "ABC"), (50, "ABC")], 1),
    "fewer_bigger_baskets": ([(25, "A")] * 4, [(90, "A")], 0),
    "gone_quiet": ([(50, "A"), (50, "A")], [], 0),
}


def _lines(customer: str, orders: list, start: datetime) -> list[dict]:
    """One line per department of each order, the order's amount split evenly over them."""
    rows = []
    for n, (amount, departments) in enumerate(orders):
        for d in departments:
            rows.append(
                {
                    "order_id": f"{customer}-{start:%m}-{n}",
                    "customer_id": customer,
                    "ordered_at": (start + timedelta(days=n)).isoformat(),
                    "amount": amount / len(departments),
                    "product_id": f"p{d}",
                    "department": d,
                }
            )
    return rows


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Settings:
    """The customers of `SHOP`, plus `lapsed`: an order long before the window, then three after."""
    rows = [
        line
        for customer, (before, after, _) in SHOP.items()
        for line in _lines(customer, before, BEFORE) + _lines(customer, after, AFTER)
    ]
    rows += _lines("lapsed", [(40, "A")], datetime(2023, 11, 1, 10))
    rows += _lines("lapsed", [(40, "A")] * 3, AFTER)
    folder = tmp_path_factory.mktemp("growth_shop")
    path = Path(folder) / "lines.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    settings = Settings.resolve(folder / "home")
    import_file(settings, path, [])
    return settings


def _labels(settings: Settings, with_categories: bool = True) -> pd.DataFrame:
    connection = connect()
    register_canonical_views(connection, DataStore(settings.data_dir).live_version())
    until = CUTOFF + timedelta(days=HORIZON)
    return compute_labels(connection, [CUTOFF], HORIZON, until, with_categories).set_index("customer_id")


@pytest.mark.parametrize("customer", list(SHOP))
def test_an_active_customer_grows_on_frequency_basket_or_breadth_without_spending_less(shop, customer):
    assert _labels(shop).loc[customer, "growth"] == SHOP[customer][2]


def test_a_lapsed_customer_gets_no_growth_label_even_when_coming_back_strongly(shop):
    labels = _labels(shop)
    assert np.isnan(labels.loc["lapsed", "growth"])
    assert labels.loc["lapsed", "churn"] == 0  # still labelled for the other models


def test_only_labelled_customers_are_kept_for_the_growth_model(shop):
    labels = _labels(shop).reset_index()
    assert "lapsed" not in set(labelled(labels, "growth").customer_id)
    assert len(labelled(labels, "churn")) == len(labels)


def test_without_order_lines_breadth_cannot_count(shop):
    labels = _labels(shop, with_categories=False)
    assert labels.loc["wider", "growth"] == 0
    assert labels.loc["bigger_baskets", "growth"] == 1


def test_active_means_an_order_within_the_horizon():
    assert is_active(np.array([0.5, 30.0, 30.5, np.nan]), 30).tolist() == [True, True, False, False]
