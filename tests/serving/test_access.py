"""Who may call what: the access guard in front of a small app with the service's route names."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from features.errors import InputError
from serving.access import Guard
from serving.config import ServeConfig, TokenScope

READ_TOKEN = "read-token-0123456789"
ADMIN_TOKEN = "admin-token-0123456789"
LOCAL = ("127.0.0.1", 40000)
REMOTE = ("203.0.113.7", 40000)


async def _echo(request: Request) -> JSONResponse:
    return JSONResponse({"path": request.url.path, "bytes": len(await request.body())})


async def _failing(request: Request) -> JSONResponse:
    return JSONResponse(
        {"error": "1 validation error", "detail": [{"loc": ["customer_id"], "msg": "bad"}]}, 400
    )


APP = Starlette(
    routes=[
        Route("/predict", _echo, methods=["POST"]),
        Route("/reload", _echo, methods=["POST"]),
        Route("/livez", _echo, methods=["GET"]),
        Route("/failing", _failing, methods=["POST"]),
    ]
)


def _client(client: tuple[str, int] = LOCAL, **config: object) -> TestClient:
    settings = dataclasses.replace(ServeConfig(), **config)
    return TestClient(Guard(APP, settings), base_url="http://localhost:3000", client=client)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


TOKENS = {READ_TOKEN: TokenScope.READ, ADMIN_TOKEN: TokenScope.ADMIN}


def test_health_probes_need_no_token_and_no_known_host():
    client = _client(REMOTE, tokens=TOKENS)
    assert client.get("/livez", headers={"Host": "10.1.2.3:3000"}).status_code == 200


def test_without_tokens_reads_are_served_to_localhost_only():
    assert _client(LOCAL).post("/predict", json={}).status_code == 200
    refused = _client(REMOTE).post("/predict", json={})
    assert refused.status_code == 403 and refused.json()["code"] == "token_required"


def test_without_tokens_admin_calls_are_refused_even_from_localhost():
    refused = _client(LOCAL).post("/reload")
    assert refused.status_code == 403 and "TIERWISE_API_TOKEN" in refused.json()["error"]


def test_with_tokens_a_call_without_or_with_a_wrong_token_is_401():
    client = _client(LOCAL, tokens=TOKENS)
    missing = client.post("/predict", json={})
    wrong = client.post("/predict", json={}, headers=_bearer("not-the-token-at-all"))
    assert missing.status_code == wrong.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert set(missing.json()) == {"error", "code", "request_id"}


def test_a_read_token_reads_but_cannot_reload():
    client = _client(REMOTE, tokens=TOKENS)
    assert client.post("/predict", json={}, headers=_bearer(READ_TOKEN)).status_code == 200
    refused = client.post("/reload", headers=_bearer(READ_TOKEN))
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"


def test_an_admin_token_reloads_from_anywhere():
    assert _client(REMOTE, tokens=TOKENS).post("/reload", headers=_bearer(ADMIN_TOKEN)).status_code == 200


def test_a_foreign_host_header_is_refused_so_dns_rebinding_cannot_reach_the_service():
    client = _client(LOCAL, tokens=TOKENS)
    refused = client.post("/predict", json={}, headers={**_bearer(READ_TOKEN), "Host": "attacker.example"})
    assert refused.status_code == 400 and refused.json()["code"] == "host_not_allowed"


def test_configured_host_names_are_served():
    client = _client(LOCAL, tokens=TOKENS, allowed_hosts=("tierwise.internal",))
    answer = client.post(
        "/predict", json={}, headers={**_bearer(READ_TOKEN), "Host": "tierwise.internal:3000"}
    )
    assert answer.status_code == 200


def test_a_cross_site_form_post_to_reload_is_refused_even_with_a_token():
    headers = {**_bearer(ADMIN_TOKEN), "Origin": "https://evil.example", "Content-Type": "text/plain"}
    refused = _client(LOCAL, tokens=TOKENS).post("/reload", content=b"x=1", headers=headers)
    assert refused.status_code == 403 and refused.json()["code"] == "origin_not_allowed"


def test_a_same_origin_or_configured_origin_is_allowed():
    same = {"Origin": "http://localhost:3000"}
    assert _client(LOCAL).post("/predict", json={}, headers=same).status_code == 200
    dashboard = {"Origin": "https://staff.example"}
    assert _client(LOCAL).post("/predict", json={}, headers=dashboard).status_code == 403
    allowed = _client(LOCAL, allowed_origins=("https://staff.example",))
    assert allowed.post("/predict", json={}, headers=dashboard).status_code == 200


def test_a_body_that_is_not_json_is_415():
    refused = _client(LOCAL).post(
        "/predict", content=b"customer_id=1", headers={"Content-Type": "text/plain"}
    )
    assert refused.status_code == 415 and refused.json()["code"] == "unsupported_media_type"


def test_a_body_over_the_limit_is_413_before_the_app_reads_it():
    client = _client(LOCAL, max_body_bytes=1_000)
    assert client.post("/predict", json={"customer_id": "x" * 2_000}).status_code == 413
    chunked = client.post(
        "/predict",
        content=iter([b'{"customer_id": "', b"x" * 2_000, b'"}']),
        headers={"Content-Type": "application/json"},
    )
    assert chunked.status_code == 413 and chunked.json()["code"] == "body_too_large"
    assert client.post("/predict", json={"customer_id": "x" * 500}).json()["bytes"] > 500


def test_an_error_answer_of_the_framework_gets_a_code_a_field_and_a_request_id():
    answer = _client(LOCAL).post("/failing", json={})
    body = answer.json()
    assert answer.status_code == 400 and body["code"] == "invalid_input" and body["field"] == "customer_id"
    assert answer.headers["X-Request-ID"] == body["request_id"]


def test_tokens_come_from_the_environment_and_a_private_token_file(tmp_path: Path, monkeypatch):
    token_file = tmp_path / "tokens"
    token_file.write_text(f"# staff dashboard\nread {READ_TOKEN}\nadmin {ADMIN_TOKEN}\n")
    os.chmod(token_file, 0o600)
    monkeypatch.setenv("TIERWISE_TOKEN_FILE", str(token_file))
    assert ServeConfig.from_env().tokens == TOKENS


def test_a_token_file_others_can_read_is_refused_naming_the_fix(tmp_path: Path, monkeypatch):
    token_file = tmp_path / "tokens"
    token_file.write_text(f"read {READ_TOKEN}\n")
    os.chmod(token_file, 0o644)
    monkeypatch.setenv("TIERWISE_TOKEN_FILE", str(token_file))
    with pytest.raises(InputError, match="chmod 600"):
        ServeConfig.from_env()


def test_a_short_token_is_refused(monkeypatch):
    monkeypatch.setenv("TIERWISE_API_TOKEN", "secret")
    with pytest.raises(InputError, match="TIERWISE_API_TOKEN"):
        ServeConfig.from_env()
