"""Personas: K-means over habits, named from what sets each group apart, stable across refits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.errors import InputError
from training.personas import HABITS, fit_personas, stability

#: Three kinds of shopper planted in a synthetic population, by what sets them apart.
PLANTED = {
    "evening big-basket": {"evening_order_share_365d": 0.8, "avg_order_value_365d": 140.0},
    "morning deal-seeker": {"morning_order_share_365d": 0.8, "discounted_spend_share_365d": 0.7},
    "weekend regular": {"weekend_order_share_365d": 0.9, "orders_365d": 90.0},
}


def population(per_group: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Customers of the three planted kinds with noisy habits; returns the frame and the planted group."""
    rng = np.random.default_rng(seed)
    frames, truth = [], []
    for group, (_, traits) in enumerate(PLANTED.items()):
        base = {
            "morning_order_share_365d": 0.2,
            "afternoon_order_share_365d": 0.3,
            "evening_order_share_365d": 0.3,
            "night_order_share_365d": 0.05,
            "weekend_order_share_365d": 0.3,
            "orders_365d": 25.0,
            "avg_order_value_365d": 45.0,
            "categories_365d": 40.0,
            "discounted_spend_share_365d": 0.2,
            "coupon_redemptions_365d": 1.0,
            "private_label_share_365d": 0.2,
            "top_department_share_365d": 0.4,
            "new_product_rate_90d": 0.2,
        }
        base.update(traits)
        frame = pd.DataFrame(
            {
                name: np.clip(
                    value * rng.lognormal(0, 0.15, per_group)
                    if value > 1
                    else value + rng.normal(0, 0.06, per_group),
                    0,
                    None,
                )
                for name, value in base.items()
            }
        )
        frame["kids_count"] = rng.choice(["0", "1", "3+"], per_group)
        frames.append(frame)
        truth.append(np.full(per_group, group))
    frame = pd.concat(frames, ignore_index=True)
    frame.insert(0, "customer_id", [f"c{i}" for i in range(len(frame))])
    return frame, np.concatenate(truth)


def test_the_planted_number_of_personas_is_found_by_the_silhouette():
    frame, truth = population()
    model = fit_personas(frame, (2, 6))
    assert len(model.ids) == 3
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(truth, model.assign(frame)) > 0.95


def test_each_persona_is_named_after_what_sets_it_apart():
    frame, truth = population()
    model = fit_personas(frame, (2, 6))
    ids = model.assign(frame)
    name_of_group = {group: model.names[int(np.bincount(ids[truth == group]).argmax())] for group in range(3)}
    assert "Evening" in name_of_group[0] and "big-basket" in name_of_group[0]
    assert "Morning" in name_of_group[1] or "promotion-hunting" in name_of_group[1]
    assert "Weekend" in name_of_group[2] or "frequent" in name_of_group[2].lower()
    assert len(set(model.names.values())) == 3


def test_a_refit_on_next_months_customers_keeps_each_personas_id_and_name():
    first_frame, first_truth = population(seed=0)
    later_frame, later_truth = population(seed=1)
    first = fit_personas(first_frame, (2, 6))
    later = fit_personas(later_frame, (2, 6), previous=first, seed=1)
    first_ids, later_ids = first.assign(later_frame), later.assign(later_frame)
    assert (first_ids == later_ids).mean() > 0.97  # the same id for the same customer, not just a relabelling
    assert later.names == first.names
    assert stability(first, later, later_frame) > 0.9


def test_without_a_previous_model_the_same_data_and_seed_give_the_same_model():
    frame, _ = population()
    assert fit_personas(frame, (2, 5)).to_dict() == fit_personas(frame, (2, 5)).to_dict()


def test_one_customer_is_placed_as_in_the_whole_population():
    frame, _ = population()
    model = fit_personas(frame, (2, 6))
    batch = model.assign(frame)
    for row in (0, 700, 1500):
        assert model.assign(frame.iloc[[row]])[0] == batch[row]


def test_missing_habits_read_as_the_typical_value_and_orders_only_data_fits_on_order_habits():
    frame, _ = population()
    lines = [
        name
        for name in HABITS
        if name not in ("orders_365d", "avg_order_value_365d") and "order_share" not in name
    ]
    orders_only = frame.assign(**{name: np.nan for name in lines})
    model = fit_personas(orders_only, (2, 6))
    assert set(model.features) <= set(HABITS) - set(lines)
    assert len(model.assign(orders_only.iloc[:5])) == 5


def test_a_renamed_persona_keeps_its_new_name_and_an_unknown_id_is_refused():
    model = fit_personas(population()[0], (2, 6))
    renamed = model.renamed({model.ids[0]: "Weekday evening families"})
    assert renamed.names[model.ids[0]] == "Weekday evening families"
    with pytest.raises(InputError, match="personas.names: no persona 99"):
        model.renamed({99: "Nobody"})


@pytest.mark.parametrize(
    ("k_range", "message"), [((1, 4), "expected 2 <= k_min"), ((5, 4), "expected 2 <= k_min")]
)
def test_an_empty_or_too_small_k_range_is_refused(k_range, message):
    with pytest.raises(InputError, match=message):
        fit_personas(population()[0], k_range)


def test_too_few_active_customers_for_the_largest_k_is_refused():
    frame, _ = population(per_group=10)
    with pytest.raises(InputError, match="30 customers with at least 3 orders"):
        fit_personas(frame, (2, 8))
