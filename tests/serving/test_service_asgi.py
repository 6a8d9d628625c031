"""The HTTP contract, exercised through the service's ASGI app (BentoML's own app, no server process)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pandas as pd
import pytest
from starlette.testclient import TestClient

from tests.conftest import SERVE_AS_OF

pytestmark = pytest.mark.slow
ADMIN_TOKEN = "asgi-test-admin-token-0123456789"


@pytest.fixture(scope="module")
def client(served_home) -> Iterator[TestClient]:
    """One app per test process: BentoML registers its Prometheus metrics globally, once."""
    patch = pytest.MonkeyPatch()
    patch.setenv("TIERWISE_HOME", str(served_home.home))
    patch.setenv("TIERWISE_API_TOKEN", ADMIN_TOKEN)
    from serving.service import Tierwise

    try:
        with TestClient(
            Tierwise.to_asgi(),
            raise_server_exceptions=False,
            base_url="http://localhost",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as client:
            yield client
    finally:
        patch.undo()


@pytest.fixture(scope="module")
def known(served_home) -> list[str]:
    snapshot = served_home.tier_snapshots_dir("lifecycle") / f"{SERVE_AS_OF}.parquet"
    return pd.read_parquet(snapshot, columns=["customer_id"]).customer_id.head(5).tolist()


def test_predict_answers_a_customer_with_predictions_tier_flags_and_reasons(client, known):
    response = client.post("/predict", json={"customer_id": known[0]})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["tier_source"] == "snapshot"
    assert 0 <= body["churn_probability"] <= 1 and body["expected_value"] >= 0
    assert body["horizon_days"] == 28 and body["features_as_of"] == SERVE_AS_OF.isoformat()
    assert set(body["model_versions"]) == {"churn", "customer_value", "growth_potential"}
    assert body["model_sources"] == {k: f"champion v{v}" for k, v in body["model_versions"].items()}
    assert len(body["reasons"]["churn"]) == 3


def test_an_unknown_customer_is_404_naming_the_id(client):
    response = client.post("/predict", json={"customer_id": "nobody-123"})
    assert response.status_code == 404
    assert response.json()["customer_id"] == "nobody-123" and "nobody-123" in response.json()["error"]


def test_a_new_customer_gets_the_documented_cold_start_answer(client):
    body = client.post("/predict", json={"customer_id": "signed-up-today", "new_customer": True}).json()
    assert body["status"] == "cold_start" and body["tier_source"] == "cold_start"
    assert body["tier_rule"].startswith("cold start")


def test_a_batch_reports_each_item_so_one_unknown_id_fails_nothing(client, known):
    response = client.post("/predict_batch", json={"customer_ids": [*known[:3], "nobody-123"]})
    assert response.status_code == 200
    body = response.json()
    assert [p["status"] for p in body["predictions"]] == ["ok", "ok", "ok", "not_found"]
    assert (body["found"], body["not_found"], body["cold_start"]) == (3, 1, 0)


def test_predict_returns_the_stored_answer_and_a_batch_the_same_bytes_per_item(client, served_home, known):
    from serving.predictor import Predictor
    from serving.schemas import PredictBatchResponse, Prediction

    predictor = Predictor(served_home)
    stored = predictor.stored_answer(known[0])
    assert stored is not None and client.post("/predict", json={"customer_id": known[0]}).content == stored
    ids = [known[0], "nobody-123", known[1]]
    computed = predictor.predict_ids(ids)
    expected = PredictBatchResponse(
        predictions=[Prediction.model_validate(a) for a in computed], found=2, cold_start=0, not_found=1
    )
    assert (
        client.post("/predict_batch", json={"customer_ids": ids}).content
        == expected.model_dump_json().encode()
    )


def test_too_many_ids_are_refused_naming_the_field(client):
    response = client.post("/predict_batch", json={"customer_ids": [str(i) for i in range(1001)]})
    assert response.status_code == 422
    assert response.json()["field"] == "customer_ids" and "1000" in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"customer_id": 42}, "customer_id"),
        ({}, "customer_id"),
        ({"customer_id": "1", "colour": "red"}, "colour"),
        ({"customer_id": ""}, "customer_id"),
    ],
)
def test_a_malformed_body_is_400_naming_the_field(client, body, field):
    response = client.post("/predict", json=body)
    assert response.status_code == 400
    assert response.json()["field"] == field and response.json()["code"] == "invalid_input"


def test_a_body_that_is_not_json_is_a_client_error(client):
    response = client.post("/predict", content=b"{not json", headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500


def test_score_features_answers_a_what_if_vector(client):
    vector = {"days_since_last_order": 5, "tenure_days": 300, "orders_365d": 40, "spend_365d": 2500.0}
    response = client.post("/score_features", json={"customer_id": "what-if", "features": vector})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["tier_source"] == "policy" and body["features_as_of"] is None


def test_score_features_refuses_an_unknown_feature_by_name(client):
    vector = {"days_since_last_order": 5, "tenure_days": 300, "orders_365d": 4, "shoe_size": 44}
    response = client.post("/score_features", json={"features": vector})
    assert response.status_code == 422 and "shoe_size" in response.json()["error"]


def test_version_reports_the_live_models_and_snapshots(client):
    body = client.get("/admin/version").json()
    assert {m["name"] for m in body["models"]} == {"churn", "customer_value", "growth_potential"}
    assert all(m["source"] == f"champion v{m['version']}" for m in body["models"])
    assert body["policy"] == "lifecycle" and body["tiers_as_of"] == SERVE_AS_OF.isoformat()


def test_reload_without_a_new_champion_changes_nothing(client):
    response = client.post("/reload", json={})
    assert response.status_code == 200 and response.json()["changed"] is False


def test_health_readiness_and_the_openapi_page_come_from_bentoml(client):
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 200
    paths = client.get("/docs.json").json()["paths"]
    assert {"/predict", "/predict_batch", "/score_features", "/reload"} <= set(paths)
    assert "customer_id" in str(paths["/predict"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"customer_id": "x" * 5_000}, "customer_id"),  # an oversize id is refused, not echoed
        ({"customer_id": "1 OR 1=1"}, "customer_id"),
        ({"customer_id": "1", "new_customer": "yes"}, "new_customer"),  # "yes" is not a boolean
    ],
)
def test_an_id_or_flag_outside_the_contract_is_a_small_400_naming_the_field(client, body, field):
    response = client.post("/predict", json=body)
    assert response.status_code == 400 and response.json()["field"] == field
    assert len(response.content) < 2_000


def test_a_body_over_the_limit_is_413_before_it_is_parsed(client):
    response = client.post("/predict", json={"customer_id": "x" * 5_000_000})
    assert response.status_code == 413 and response.json()["code"] == "body_too_large"


def test_a_number_too_large_for_a_float_is_bad_input_not_an_outage(client):
    vector = {"days_since_last_order": 10**400, "tenure_days": 300, "orders_365d": 4}
    response = client.post("/score_features", json={"features": vector})
    assert response.status_code == 422
    assert response.json()["field"] == "features.days_since_last_order"


def test_twenty_thousand_feature_names_are_refused_in_a_small_answer(client):
    response = client.post("/score_features", json={"features": {f"f{i}": 1 for i in range(20_000)}})
    assert response.status_code == 400 and len(response.content) < 2_000


def test_error_answers_carry_a_code_and_a_request_id(client):
    response = client.post("/predict", json={"customer_id": "nobody-123"})
    body = response.json()
    assert body["code"] == "not_found" and len(body["request_id"]) == 16
    assert response.headers["X-Request-ID"] == body["request_id"]


@pytest.mark.parametrize(
    "body", [b"{not json", b'{"customer_id": 42}'], ids=["not json", "failed validation"]
)
def test_the_frameworks_own_400s_carry_a_code_and_a_request_id_too(client, body):
    response = client.post("/predict", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["code"] == "invalid_input"
    assert response.headers["X-Request-ID"] == response.json()["request_id"]


def test_a_caller_without_the_token_is_refused_before_any_customer_is_read(client, known):
    response = client.post("/predict", json={"customer_id": known[0]}, headers={"Authorization": ""})
    assert response.status_code == 401 and "churn_probability" not in response.text


def test_a_bad_body_is_logged_as_one_line_without_a_traceback_or_the_input(client, caplog):
    with caplog.at_level("INFO"):
        client.post("/predict", json={"customer_id": "secret value with spaces"})
    records = [r for r in caplog.records if r.name == "bentoml._internal.server.http_app"]
    assert records and all(r.levelname == "INFO" and r.exc_info is None for r in records)
    assert "secret value" not in caplog.text


def test_the_openapi_document_names_the_api_its_version_token_and_every_status(client):
    document = client.get("/docs.json").json()
    assert document["info"]["title"] == "Tierwise prediction API" and document["info"]["version"] != "None"
    predict = document["paths"]["/predict"]["post"]
    assert {"401", "404", "413", "422", "429", "503"} <= set(predict["responses"])
    assert predict["security"] == [{"bearer": ["read"]}]
    assert document["paths"]["/reload"]["post"]["security"] == [{"bearer": ["admin"]}]
    assert document["paths"]["/livez"]["get"]["security"] == []


def test_the_openapi_examples_are_answered_by_the_service(client, known):
    """Each documented request example works against the real service (with a real id)."""
    document = client.get("/docs.json").json()
    for path in ("/predict", "/predict_batch", "/score_features"):
        example = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["example"]
        body = json.loads(json.dumps(example).replace('"1002"', json.dumps(known[0])))
        assert client.post(path, json=body).status_code == 200, path


def test_requests_pass_opentelemetry_by_unless_tracing_is_switched_on(client):
    """BentoML wraps every request in spans even when none is sampled; unless `TIERWISE_TRACING=on`
    its OpenTelemetry middleware passes every path straight through."""
    otel = next(m for m in client.app.user_middleware if m.cls.__name__ == "OpenTelemetryMiddleware")
    excluded = otel.kwargs["excluded_urls"]
    assert all(excluded.url_disabled(f"http://localhost{path}") for path in ("/predict", "/orders", "/livez"))
