"""The service's work in-process: online features, the three models, tiers, flags, reasons, reloads."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from features import feature_store
from features.errors import InputError
from features.online_reader import OnlineFeatureReader
from serving.predictor import Predictor
from tests.conftest import SERVE_AS_OF, copy_home
from training import registry

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def predictor(served_home) -> Predictor:
    return Predictor(served_home)


@pytest.fixture(scope="module")
def batch(served_home) -> pd.DataFrame:
    """The batch tier snapshot `tierwise score` wrote for the served date."""
    return pd.read_parquet(served_home.tier_snapshots_dir("lifecycle") / f"{SERVE_AS_OF}.parquet")


def test_answers_equal_the_batch_snapshot_for_the_same_customers(predictor, batch):
    sample = batch.sample(60, random_state=1)
    answers = pd.DataFrame(predictor.predict_ids(sample.customer_id.tolist()))
    assert (answers.status == "ok").all()
    for column in ["churn_probability", "expected_value", "growth_potential"]:
        # Exactly: both predict from the contributions of one LightGBM pass.
        np.testing.assert_array_equal(answers[column].astype(float), sample[column], err_msg=column)
    assert answers.tier.tolist() == sample.tier.tolist()
    assert answers.risk_flags.map(",".join).tolist() == sample.risk_flags.tolist()
    assert set(answers.features_as_of) == {SERVE_AS_OF}


def test_the_service_answers_values_at_the_level_factor_the_batch_scored_with(predictor, batch, served_home):
    """The factor belongs to the population the batch scored; one customer's answer reuses it."""
    factor = batch.customer_value_level_factor
    assert factor.nunique() == 1 and factor.iloc[0] != 1.0
    anchor = predictor.live.champions.bundles["customer_value"].level_anchor
    spend = served_home.feature_snapshots.read(SERVE_AS_OF, ["spend_90d"]).spend_90d
    assert batch.expected_value.mean() == pytest.approx(anchor * spend.mean(), rel=1e-9)
    customer = batch.iloc[7]
    answer = predictor.predict_ids([customer.customer_id])[0]
    assert answer["expected_value"] == customer.expected_value


def test_a_lapsed_customer_is_answered_without_growth_potential_or_its_reasons(predictor, batch):
    lapsed = batch[batch.growth_potential.isna()].customer_id.iloc[0]
    answer = predictor.predict_ids([lapsed])[0]
    assert answer["growth_potential"] is None and answer["reasons"]["growth_potential"] == []
    assert answer["churn_probability"] is not None and answer["reasons"]["churn"]
    assert "growth_opportunity" not in answer["risk_flags"]


def test_the_reasons_in_an_answer_are_the_batch_snapshots(predictor, batch):
    sample = batch.sample(60, random_state=3)
    answers = predictor.predict_ids(sample.customer_id.tolist())
    for model in ["churn", "customer_value", "growth_potential"]:
        said = [" | ".join(r["text"] for r in a["reasons"][model]) or None for a in answers]
        stored = [None if pd.isna(text) else text for text in sample[f"{model}_reasons"]]
        assert said == stored, model
    assert sample.growth_potential_reasons.isna().any() and sample.churn_reasons.notna().all()


def test_the_persona_in_an_answer_is_the_batch_snapshots(predictor, batch):
    sample = batch.sample(60, random_state=2)
    answers = predictor.predict_ids(sample.customer_id.tolist())
    assert [a["persona"]["id"] for a in answers] == sample.persona_id.tolist()
    assert [a["persona"]["name"] for a in answers] == sample.persona.tolist()
    assert sample.persona.nunique() > 1


def test_the_next_order_answer_equals_the_batch_snapshot(predictor, batch):
    sample = batch.sample(60, random_state=4)
    answers = pd.DataFrame(predictor.predict_ids(sample.customer_id.tolist()))
    for column in ["p_order_7d", "p_order_30d", "expected_next_order_days"]:
        np.testing.assert_allclose(answers[column].astype(float), sample[column], rtol=1e-9)
    expected = [None if pd.isna(d) else d.date() for d in sample.expected_next_order_date]
    assert answers.expected_next_order_date.tolist() == expected
    assert answers.p_order_30d.ge(answers.p_order_7d).all()


def test_the_offers_in_an_answer_are_the_batch_snapshots(predictor, batch):
    sample = batch[batch.offers.notna()].sample(40, random_state=3)
    answers = predictor.predict_ids(sample.customer_id.tolist())
    assert [" | ".join(o["item"] for o in a["offers"]) for a in answers] == sample.offers.tolist()
    assert [" | ".join(o["reason"] for o in a["offers"]) for a in answers] == sample.offer_reasons.tolist()
    assert all(a["offers_note"] is None and 0 < len(a["offers"]) <= 5 for a in answers)


def test_without_products_an_answer_has_no_offers_and_says_why(served_home, batch):
    own = Predictor(served_home)
    own.live = dataclasses.replace(own.live, lookup=dataclasses.replace(own.live.lookup, offers={}))
    answer = own.predict_ids([batch.customer_id.iloc[0]])[0]
    assert answer["offers"] is None
    assert answer["offers_note"] == "no offers: the data has no products on its order lines"


def test_a_customers_features_as_a_vector_give_the_snapshots_persona(predictor, served_home, batch):
    day = served_home.feature_snapshots.read(SERVE_AS_OF).set_index("customer_id")
    for customer in batch.customer_id.head(30):
        features = {
            k: (None if pd.isna(v) else v) for k, v in day.loc[customer].items() if k != "event_timestamp"
        }
        answer = predictor.score_features([(customer, features)])[0]
        assert answer["persona"]["id"] == batch.set_index("customer_id").persona_id[customer]


def test_the_value_interval_in_an_answer_equals_the_batch_snapshot(predictor, batch):
    customers = batch.customer_id.head(20).tolist()
    answers = predictor.predict_ids(customers)
    low = [a["expected_value_interval"][0] for a in answers]
    high = [a["expected_value_interval"][1] for a in answers]
    np.testing.assert_allclose(low, batch.expected_value_low.head(20), rtol=1e-9)
    np.testing.assert_allclose(high, batch.expected_value_high.head(20), rtol=1e-9)
    assert all(lo <= hi for lo, hi in zip(low, high, strict=True))


def test_each_model_gives_three_reasons_in_words(predictor, batch):
    active = batch[batch.growth_potential.notna()]  # a lapsed customer has no growth answer to explain
    answer = predictor.predict_ids([active.customer_id.iloc[0]])[0]
    assert set(answer["reasons"]) == {"churn", "customer_value", "growth_potential"}
    for reasons in answer["reasons"].values():
        assert len(reasons) == 3
        assert all(r["effect"] in r["text"] and "as_of" not in r["text"] for r in reasons)


def test_no_answer_gives_a_household_attribute_as_a_reason(predictor, batch):
    from features.catalog import FEATURES_BY_NAME

    answers = predictor.predict_ids(batch.customer_id.tolist())
    views = {FEATURES_BY_NAME[r["feature"]].view for a in answers for rs in a["reasons"].values() for r in rs}
    assert views and "household" not in views


def test_an_unknown_customer_is_not_found_unless_the_backend_says_it_is_new(predictor, batch):
    known, unknown = batch.customer_id.iloc[0], "brand-new-42"
    answers = predictor.predict_ids([known, unknown])
    assert [a["status"] for a in answers] == ["ok", "not_found"]
    assert unknown in answers[1]["error"]
    cold = predictor.predict_ids([unknown], new_customers=True)[0]
    assert cold["status"] == "cold_start" and cold["tier"] == "New" and cold["tier_source"] == "cold_start"
    assert 0 <= cold["churn_probability"] <= 1 and cold["reasons"] == {}


@pytest.mark.integration
def test_on_redis_an_unknown_customer_is_not_found_or_a_cold_start(
    served_home, redis_server, tmp_path, batch
):
    """The same answers with the online store on Redis (which once reported unknown ids as found,
    with empty features: a 422 instead of a 404 or a cold start)."""
    from features.settings import Settings
    from pipelines import build_features

    copied = copy_home(served_home, tmp_path / "home")
    settings = Settings(copied.home, "redis", redis_server, copied.mlflow_uri)
    build_features.apply_and_materialize(settings, SERVE_AS_OF)
    predictor = Predictor(settings)
    known, unknown = batch.customer_id.iloc[0], "brand-new-42"
    answers = predictor.predict_ids([known, unknown])
    assert [a["status"] for a in answers] == ["ok", "not_found"]
    assert answers[0]["features_as_of"] == SERVE_AS_OF
    cold = predictor.predict_ids([unknown], new_customers=True)[0]
    assert cold["status"] == "cold_start" and cold["tier"] == "New" and cold["tier_source"] == "cold_start"


def test_a_customers_own_features_scored_as_a_vector_give_their_predictions(predictor, served_home, batch):
    customer = batch[batch.growth_potential.notna()].customer_id.iloc[3]  # active: all three answer
    store = feature_store.open_store(served_home)
    row = OnlineFeatureReader(store, predictor.live.reader.feature_names).read_frame([customer]).iloc[0]
    vector = {
        k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.drop("customer_id").items()
    }
    what_if = predictor.score_features([("what-if", vector)])[0]
    by_id = predictor.predict_ids([customer])[0]
    for field in ["churn_probability", "expected_value", "growth_potential"]:
        assert what_if[field] == pytest.approx(by_id[field], rel=1e-12)
    assert what_if["tier_source"] == "policy"


def test_a_what_if_tier_follows_the_snapshots_cuts(predictor, batch):
    """A vector with a top-1% predicted value and a recent order is Platinum; with 100 idle days, Dormant."""
    best = batch.sort_values("expected_value").iloc[-1]
    vector = {"days_since_last_order": 3, "tenure_days": 400, "orders_365d": 60}
    answer = predictor.live.lookup.assign(
        pd.DataFrame(
            [
                {
                    **vector,
                    "customer_id": "x",
                    "expected_value": best.expected_value + 1,
                    "churn_probability": 0.01,
                    "growth_potential": 0.5,
                }
            ]
        )
    )
    assert answer.tier.iloc[0] == "Platinum"
    idle = predictor.score_features([("x", {**vector, "days_since_last_order": 100})])[0]
    assert idle["tier"] == "Dormant"


@pytest.mark.parametrize(
    ("features", "named"),
    [
        (
            {"days_since_last_order": 3, "tenure_days": 9, "orders_365d": 1, "favourite_colour": 1},
            "favourite_colour",
        ),
        ({"tenure_days": 9, "orders_365d": 1}, "days_since_last_order"),
        ({"days_since_last_order": "soon", "tenure_days": 9, "orders_365d": 1}, "days_since_last_order"),
        ({"days_since_last_order": -4, "tenure_days": 9, "orders_365d": 1}, "days_since_last_order"),
    ],
)
def test_bad_feature_vectors_are_refused_naming_the_feature(predictor, features, named):
    with pytest.raises(InputError, match=named):
        predictor.score_features([("x", features)])


def test_reload_picks_up_a_new_champion(served_home, tmp_path):
    home = copy_home(served_home, tmp_path / "home")
    served = Predictor(home)
    registry.configure(home)
    current = registry.champion("churn")
    new_version = registry.register("churn", current.source, {"note": "reload test"})
    try:
        registry.promote("churn", new_version)
        assert served.is_stale()
        result = served.reload()
        assert result.changed and result.versions["churn"] == new_version
        customer = next(iter(served.live.lookup.tiers))
        assert served.predict_ids([customer])[0]["model_versions"]["churn"] == new_version
    finally:
        registry.rollback("churn")


def test_a_value_champion_promoted_after_the_batch_gets_the_factor_scoring_would_store(
    served_home, batch, tmp_path
):
    """The snapshot's factor belongs to the version that scored it; a new version's is computed over
    the same date's features (here the same model again, so the same factor)."""
    home = copy_home(served_home, tmp_path / "home")
    registry.configure(home)
    current = registry.champion("customer_value")
    registry.promote("customer_value", registry.register("customer_value", current.source, {}))
    served = Predictor(home)
    assert served.live.champions.versions["customer_value"] != current.version
    factor = served.live.champions.level_factor("customer_value")
    assert factor == batch.customer_value_level_factor.iloc[0]


def test_a_reload_writes_nothing_into_the_home(served_home, tmp_path):
    home = copy_home(served_home, tmp_path / "home")
    served = Predictor(home)
    files = {p: p.stat().st_mtime_ns for p in home.home.rglob("*") if p.is_file()}
    served.reload()
    assert {p: p.stat().st_mtime_ns for p in home.home.rglob("*") if p.is_file()} == files


def test_a_reload_that_fails_keeps_the_old_models_serving(served_home, batch, tmp_path):
    home = copy_home(served_home, tmp_path / "home")
    served = Predictor(home)
    before = served.live
    (home.tier_snapshots_dir("lifecycle") / "2099-01-01.parquet").write_bytes(b"not parquet")
    result = served.reload()
    assert result.error and not result.changed
    assert served.live is before and served.last_reload_error == result.error
    assert served.predict_ids([batch.customer_id.iloc[0]])[0]["status"] == "ok"


def test_predictions_from_the_contributions_equal_lightgbms_own(predictor, served_home):
    features = pd.read_parquet(served_home.snapshots_dir / f"{SERVE_AS_OF}.parquet").head(200)
    for bundle in predictor.live.champions.bundles.values():
        matrix = bundle.matrix(features)
        predicted, _ = bundle.predict_and_explain(matrix)
        np.testing.assert_allclose(predicted, bundle.predict_matrix(matrix), rtol=1e-9)
