"""Precomputed answers: scoring stores every customer's answer, `predict` serves it in one read while
it is current, and nothing stale is ever served (other models, newer features, an order event)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from features import feature_store
from features.errors import InputError
from features.feature_repo import ANSWER_VIEW
from features.online_answers import OnlineAnswers
from features.settings import Settings
from pipelines import build_features
from pipelines.score import score
from serving.answers import answer_json, publish
from serving.events import OrderEvents
from serving.predictor import Predictor
from tests.conftest import SERVE_AS_OF, copy_home
from training import registry

pytestmark = pytest.mark.slow


@pytest.fixture
def served(served_home: Settings, tmp_path: Path) -> Settings:
    return copy_home(served_home, tmp_path / "home")


def customers_of(settings: Settings) -> list[str]:
    return sorted(settings.tier_snapshots("lifecycle").read(SERVE_AS_OF).customer_id)


def order(customer: str, product: str) -> dict:
    return {
        "order_id": "web-1",
        "customer_id": customer,
        "ordered_at": "2017-12-05T18:05:00",
        "lines": [{"product_id": product, "quantity": 2, "amount": 3.58}],
    }


def test_scoring_stores_each_customers_answer_byte_for_byte_as_predict_computes_it(served_home):
    predictor = Predictor(served_home)
    customers = customers_of(served_home)
    computed = predictor.predict_ids(customers)
    assert [predictor.stored_answer(c) for c in customers] == [answer_json(a) for a in computed]


def test_the_published_answers_file_holds_what_the_online_store_serves(served_home):
    predictor = Predictor(served_home)
    published = pd.read_parquet(served_home.answers_dir / f"{SERVE_AS_OF}.parquet")
    assert sorted(published.customer_id) == customers_of(served_home)
    assert set(published.answer_key) == {predictor.live.answer_key}
    first = published.iloc[0]
    assert predictor.stored_answer(first.customer_id) == first.answer.encode()


def test_predict_serves_a_stored_answer_only_while_its_key_is_the_live_one(served):
    predictor = Predictor(served)
    customer = customers_of(served)[0]
    answers = OnlineAnswers(feature_store.open_store(served))
    marked = json.loads(predictor.stored_answer(customer))
    marked["tier_rule"] = "stored, not computed"
    body = json.dumps(marked).encode()
    at = pd.Timestamp(SERVE_AS_OF, tz="UTC").to_pydatetime()
    answers.write([(customer, body)], predictor.live.answer_key, at)
    assert predictor.stored_answer(customer) == body
    answers.write([(customer, body)], "computed from other models", at)
    assert predictor.stored_answer(customer) is None


def assert_later_answers_are_kept(settings: Settings) -> None:
    answers = OnlineAnswers(feature_store.open_store(settings))
    first, second = customers_of(settings)[:2]
    day = pd.Timestamp(SERVE_AS_OF, tz="UTC").to_pydatetime()
    answers.write([(first, b'{"from": "event"}')], "key", day + timedelta(days=3))
    answers.write([(first, b'{"from": "snapshot"}'), (second, b'{"from": "snapshot"}')], "key", day)
    assert answers.read([first, second]) == [("key", b'{"from": "event"}'), ("key", b'{"from": "snapshot"}')]
    answers.write([(second, b'{"from": "same day"}')], "key", day)
    assert answers.read([second]) == [("key", b'{"from": "same day"}')]


def test_an_answer_dated_later_is_kept_when_an_older_one_is_written_after_it(served):
    """An order event's answer stored while scoring publishes the snapshot's answers survives it."""
    assert_later_answers_are_kept(served)


@pytest.mark.integration
def test_an_answer_dated_later_is_kept_on_redis_too(served, redis_server):
    settings = Settings(served.home, "redis", redis_server)
    build_features.apply_and_materialize(settings, SERVE_AS_OF)
    assert_later_answers_are_kept(settings)


def test_answers_of_other_models_are_not_served_until_scoring_stores_new_ones(served):
    from pipelines import train
    from tests.conftest import TRAIN_AS_OF, TRAIN_HORIZON

    customer = customers_of(served)[0]
    (result,) = train.train(served, ["growth_potential"], TRAIN_AS_OF, TRAIN_HORIZON, trials=0)
    registry.promote(result.name, result.version)
    predictor = Predictor(served)
    assert predictor.stored_answer(customer) is None
    assert score(served, SERVE_AS_OF).answers == len(customers_of(served))
    stored = json.loads(Predictor(served).stored_answer(customer))
    assert stored["model_versions"]["growth_potential"] == result.version


def test_answers_are_not_rendered_from_a_snapshot_other_models_scored(served):
    from pipelines import train
    from serving import answers
    from tests.conftest import TRAIN_AS_OF, TRAIN_HORIZON

    (result,) = train.train(served, ["growth_potential"], TRAIN_AS_OF, TRAIN_HORIZON, trials=0)
    registry.promote(result.name, result.version)
    with pytest.raises(InputError, match="scored by other models than the live ones"):
        answers.publish(served, Predictor(served), SERVE_AS_OF)


def test_loading_features_drops_the_stored_answers(served):
    build_features.apply_and_materialize(served, SERVE_AS_OF)
    predictor = Predictor(served)
    assert [predictor.stored_answer(c) for c in customers_of(served)[:20]] == [None] * 20


def test_scoring_stores_no_answers_beside_features_of_another_date(served):
    earlier = SERVE_AS_OF - timedelta(days=7)
    build_features.build(served, [earlier])
    build_features.apply_and_materialize(served, earlier)
    report = score(served, SERVE_AS_OF)
    assert report.answers == 0
    assert report.answers_note.startswith(
        f"answers not stored: answers for {SERVE_AS_OF}: the online store holds"
    )


def test_scoring_another_policy_stores_no_answers(served):
    report = score(served, SERVE_AS_OF, policy_name="rfmp")
    assert report.answers == 0 and "lifecycle policy" in report.answers_note


def test_an_order_event_stores_the_customers_new_answer(served, cj_slice_dir):
    product = str(pd.read_parquet(cj_slice_dir / "products.parquet").product_id.iloc[0])
    predictor = Predictor(served)
    customer = next(c for c, (tier, _) in sorted(predictor.live.lookup.tiers.items()) if tier == "Dormant")
    events = OrderEvents(served, lambda: predictor)
    events.submit([order(customer, product)], source="test")
    events.close()
    stored = predictor.stored_answer(customer)
    assert stored == answer_json(predictor.predict_ids([customer])[0])
    assert json.loads(stored)["tier_source"] == "event"


def test_scoring_again_keeps_the_answer_an_order_event_stored(served, cj_slice_dir):
    product = str(pd.read_parquet(cj_slice_dir / "products.parquet").product_id.iloc[0])
    predictor = Predictor(served)
    customer = customers_of(served)[0]
    events = OrderEvents(served, lambda: predictor)
    events.submit([order(customer, product)], source="test")
    events.close()
    event_answer = predictor.stored_answer(customer)
    report = score(served, SERVE_AS_OF)
    assert report.answers == len(customers_of(served)) - 1
    assert Predictor(served).stored_answer(customer) == event_answer


@pytest.mark.integration
def test_answers_are_stored_served_and_dropped_the_same_way_on_redis(served, redis_server):
    settings = Settings(served.home, "redis", redis_server)
    build_features.apply_and_materialize(settings, SERVE_AS_OF)
    customers = customers_of(settings)
    assert Predictor(settings).stored_answer(customers[0]) is None
    assert score(settings, SERVE_AS_OF).answers == len(customers)
    predictor = Predictor(settings)
    computed = predictor.predict_ids(customers[:30])
    assert [predictor.stored_answer(c) for c in customers[:30]] == [answer_json(a) for a in computed]
    build_features.apply_and_materialize(settings, SERVE_AS_OF)
    assert Predictor(settings).stored_answer(customers[0]) is None


def test_a_home_registered_before_answers_is_served_by_computing(served):
    store = feature_store.open_store(served)
    store.apply([], objects_to_delete=[store.get_feature_view(ANSWER_VIEW)], partial=False)
    predictor = Predictor(served)
    customer = customers_of(served)[0]
    assert predictor.stored_answer(customer) is None
    assert predictor.predict_ids([customer])[0]["status"] == "ok"


def test_a_snapshot_row_with_missing_fields_renders_them_as_null(served_home):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from serving.answers import snapshot_answers

    predictor = Predictor(served_home)
    snapshot = pq.read_table(served_home.tier_snapshots("lifecycle").path(SERVE_AS_OF)).slice(0, 1)
    for column, kind in [("tier", pa.string()), ("reason", pa.string()), ("churn_probability", pa.float64())]:
        at = snapshot.schema.get_field_index(column)
        snapshot = snapshot.set_column(at, column, pa.nulls(1, kind))
    ((customer, body),) = snapshot_answers(snapshot.to_batches()[0], predictor.live, SERVE_AS_OF)
    answer = json.loads(body)
    assert customer == answer["customer_id"]
    assert (answer["tier"], answer["tier_rule"], answer["churn_probability"]) == (None, None, None)


def test_answers_rendered_by_worker_processes_a_chunk_each_are_those_rendered_in_process(served):
    predictor = Predictor(served)
    chunk = len(customers_of(served)) // 5  # more chunks than workers and batches in flight
    in_process = pd.read_parquet(publish(served, predictor, SERVE_AS_OF, chunk, processes=0).path)
    published = publish(served, predictor, SERVE_AS_OF, chunk, processes=2)
    assert published.answers == len(in_process) == len(customers_of(served))
    pd.testing.assert_frame_equal(pd.read_parquet(published.path), in_process)
