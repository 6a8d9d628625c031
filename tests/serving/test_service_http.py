"""The real service: `tierwise serve` starts `bentoml serve` on a free port; every endpoint over HTTP."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from features.settings import Settings
from tests.conftest import SERVE_AS_OF, copy_home
from tests.service_process import EdgeProxy, ServiceProcess
from training import registry

pytestmark = [pytest.mark.slow, pytest.mark.integration]
START_TIMEOUT = 240  # seconds; start-up imports Feast, MLflow and LightGBM (~35 s on a quiet box)


MAX_CONCURRENCY = 4  # low, so that the shedding test needs only a few parallel calls
ADMIN_TOKEN = "http-test-admin-token-0123456789"


def _start(home: Path, log: Path, token: str | None = ADMIN_TOKEN) -> ServiceProcess:
    env = {
        **os.environ,
        "BENTOML_HOME": str(log.parent / "bentoml"),
        "TIERWISE_MAX_CONCURRENCY": str(MAX_CONCURRENCY),
    }
    env.pop("TIERWISE_API_TOKEN", None)
    if token is not None:
        env["TIERWISE_API_TOKEN"] = token
    return ServiceProcess.tierwise(home, log, env)


@pytest.fixture(scope="module")
def served_copy(served_home, tmp_path_factory) -> Settings:
    """The home the service serves here: a copy, since the reload test promotes a model in it."""
    return copy_home(served_home, tmp_path_factory.mktemp("served-copy") / "home")


@pytest.fixture(scope="module")
def servers(served_copy, tmp_path_factory) -> Iterator[tuple[str, str]]:
    """The served home and an empty home, started side by side (start-up dominates the run time)."""
    logs = tmp_path_factory.mktemp("service-logs")
    served = _start(served_copy.home, logs / "served.log")
    empty = _start(tmp_path_factory.mktemp("empty") / "home", logs / "empty.log", token=None)
    try:
        served.wait("/readyz", START_TIMEOUT)
        empty.wait("/livez", START_TIMEOUT)
        yield served.url, empty.url
    finally:
        served.stop()
        empty.stop()


@pytest.fixture(scope="module")
def url(servers) -> str:
    return servers[0]


@pytest.fixture(scope="module")
def api(url) -> Iterator[httpx.Client]:
    """A caller holding the admin token."""
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=120
    ) as client:
        yield client


@pytest.fixture(scope="module")
def batch(served_home) -> pd.DataFrame:
    return pd.read_parquet(served_home.tier_snapshots_dir("lifecycle") / f"{SERVE_AS_OF}.parquet")


def test_answers_over_http_equal_the_batch_snapshot_for_every_customer(api, batch):
    response = api.post("/predict_batch", json={"customer_ids": batch.customer_id.tolist()})
    assert response.status_code == 200
    answers = pd.DataFrame(response.json()["predictions"])
    assert (answers.status == "ok").all() and answers.customer_id.tolist() == batch.customer_id.tolist()
    for column in ["churn_probability", "expected_value", "growth_potential"]:
        np.testing.assert_allclose(answers[column], batch[column], rtol=1e-9, atol=1e-12)
    assert answers.tier.tolist() == batch.tier.tolist()
    assert answers.risk_flags.map(",".join).tolist() == batch.risk_flags.tolist()


def test_predict_over_http_and_with_the_bentoml_client(api, url, batch):
    import bentoml

    customer = batch.customer_id.iloc[0]
    body = api.post("/predict", json={"customer_id": customer}).json()
    assert body["tier"] == batch.tier.iloc[0] and body["tier_source"] == "snapshot"
    with bentoml.SyncHTTPClient(url, token=ADMIN_TOKEN) as client:
        answer = client.predict(customer_id=customer)
    answer = answer if isinstance(answer, dict) else answer.model_dump(mode="json")
    assert answer["churn_probability"] == pytest.approx(body["churn_probability"])


def test_error_answers_over_http(api):
    assert api.post("/predict", json={"customer_id": "nobody"}).status_code == 404
    assert api.post("/predict", json={"customer_id": 7}).status_code == 400
    too_many = api.post("/predict_batch", json={"customer_ids": [str(i) for i in range(1001)]})
    assert too_many.status_code == 422 and too_many.json()["field"] == "customer_ids"
    unknown = api.post("/score_features", json={"features": {"shoe_size": 44}})
    assert unknown.status_code == 422 and "shoe_size" in unknown.json()["error"]
    cold = api.post("/predict", json={"customer_id": "nobody", "new_customer": True}).json()
    assert cold["status"] == "cold_start"


def test_health_version_and_openapi_over_http(api):
    assert api.get("/livez").status_code == 200
    version = api.get("/admin/version").json()
    assert version["tiers_as_of"] == SERVE_AS_OF.isoformat() and len(version["models"]) == 3
    assert "/predict" in api.get("/docs.json").json()["paths"]


def test_requests_beyond_the_concurrency_limit_are_shed_not_queued(url, batch):
    """A burst of batches, each with ids answered from stored answers and new ids answered in a
    thread: the requests beyond the limit are refused at once, with `Retry-After`."""
    import asyncio

    known = batch.customer_id.head(50).tolist()
    body = {"customer_ids": [*known, *(f"new-{i}" for i in range(50))], "new_customers": True}

    async def burst() -> list[httpx.Response]:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        limits = httpx.Limits(max_connections=6 * MAX_CONCURRENCY)
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120, limits=limits) as client:
            return await asyncio.gather(
                *(client.post("/predict_batch", json=body) for _ in range(6 * MAX_CONCURRENCY))
            )

    answers = asyncio.run(burst())
    statuses = [r.status_code for r in answers]
    assert set(statuses) <= {200, 429}
    assert statuses.count(429) > 0 and statuses.count(200) >= MAX_CONCURRENCY
    assert all(r.headers["retry-after"] == "1" for r in answers if r.status_code == 429)


@pytest.fixture
def edge(url) -> Iterator[str]:
    """nginx with `deploy/nginx/tierwise.conf` in front of the served service, passing 2 reads at once."""
    binary = shutil.which("nginx")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is not installed; CI must install nginx-light (.ci/run)")
        pytest.skip("nginx is not installed (Debian: apt-get install nginx-light)")
    proxy = EdgeProxy(binary, url, reads_in_flight=2)
    yield proxy.url
    proxy.stop()


def test_the_edge_proxy_sheds_reads_beyond_its_limit_in_the_services_error_shape(edge, batch):
    """Through `deploy/nginx/tierwise.conf`: reads beyond those in flight are refused by nginx with
    429, the service's error shape and `Retry-After`; the rest are the service's own answers; health
    checks and events are not limited there."""
    import asyncio

    customer = batch.customer_id.iloc[0]
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    async def burst(method: str, path: str, body: dict | None) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=edge, headers=headers, timeout=60) as client:
            return await asyncio.gather(*(client.request(method, path, json=body) for _ in range(20)))

    reads = asyncio.run(burst("POST", "/predict", {"customer_id": customer}))
    statuses = [r.status_code for r in reads]
    assert set(statuses) == {200, 429}
    shed = [r for r in reads if r.status_code == 429]
    assert all(r.headers["retry-after"] == "1" for r in shed)
    assert all(r.json()["code"] == "overloaded" and r.json()["request_id"] for r in shed)
    answered = next(r for r in reads if r.status_code == 200).json()
    assert answered["customer_id"] == customer and answered["tier"] == batch.tier.iloc[0]

    assert {r.status_code for r in asyncio.run(burst("GET", "/livez", None))} == {200}
    # Events reach the service (an empty batch: its own 400, or its own 429 beyond its limit of 4);
    # none is refused by nginx.
    events = asyncio.run(burst("POST", "/orders", {"orders": []}))
    assert 400 in {r.status_code for r in events}
    assert not any("than the service answers" in r.text for r in events)


def test_a_new_champion_is_served_after_reload(api, served_copy, batch):
    registry.configure(served_copy)
    current = registry.champion("customer_value")
    new_version = registry.register("customer_value", current.source, {"note": "http reload"})
    registry.promote("customer_value", new_version)
    try:
        reload = api.post("/reload", json={}, timeout=120).json()
        assert reload["changed"] is True and reload["model_versions"]["customer_value"] == new_version
        body = api.post("/predict", json={"customer_id": batch.customer_id.iloc[0]}).json()
        assert body["model_versions"]["customer_value"] == new_version
    finally:
        registry.rollback("customer_value")
        api.post("/reload", json={}, timeout=120)


def test_the_review_attacks_over_http_are_refused(api, url):
    """The security review's attacks against a running service, each answered before any handler runs."""
    assert httpx.post(url + "/predict", json={"customer_id": "1"}).status_code == 401
    assert httpx.post(url + "/reload").status_code == 401
    form = {"Origin": "https://evil.example", "Content-Type": "text/plain"}
    assert api.post("/reload", content=b"x=1", headers=form).status_code == 403
    assert (
        api.post("/predict", json={"customer_id": "1"}, headers={"Host": "rebind.example"}).status_code == 400
    )
    oversize = api.post("/predict", json={"customer_id": "x" * 5_000_000})
    assert oversize.status_code == 413 and len(oversize.content) < 500
    names = api.post("/score_features", json={"features": {f"f{i}": 1 for i in range(20_000)}})
    assert names.status_code == 400 and len(names.content) < 2_000
    assert names.json()["code"] == "invalid_input" and names.json()["request_id"]


def test_without_a_token_the_service_reads_for_localhost_and_refuses_admin_calls(servers):
    empty = servers[1]
    assert httpx.get(empty + "/admin/version").status_code == 503  # answered: no models there
    refused = httpx.post(empty + "/reload")
    assert refused.status_code == 403 and refused.json()["code"] == "admin_needs_token"


def test_a_service_without_models_is_not_ready_and_says_why_with_503(servers):
    empty = servers[1]
    assert httpx.get(empty + "/readyz").status_code == 503
    response = httpx.post(empty + "/predict", json={"customer_id": "1"})
    assert response.status_code == 503
    assert "champion" in response.json()["error"] or "tier snapshot" in response.json()["error"]


def test_serve_build_packages_the_service_as_a_bento(served_home, tmp_path):
    tierwise = Path(sys.executable).parent / "tierwise"
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml")}
    done = subprocess.run(
        [str(tierwise), "--home", str(served_home.home), "serve", "--build"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    tag = done.stdout.strip().split()[-1]
    name, version = tag.split(":")
    bento = tmp_path / "bentoml" / "bentos" / name / version
    assert "serving.service:Tierwise" in (bento / "bento.yaml").read_text()
    assert (bento / "src" / "serving" / "service.py").exists()
    requirements = (bento / "env" / "python" / "requirements.txt").read_text()
    assert "feast==" in requirements and "bentoml==" in requirements
    assert "\nruff==" not in requirements and "\npytest==" not in requirements  # the dev group stays out
    from pipelines.serve import PROJECT_DIR

    assert not (PROJECT_DIR / "requirements.lock.txt").exists()  # nothing written into the repository


def test_sigterm_to_tierwise_serve_stops_the_server_and_frees_the_port(served_home, tmp_path):
    """What a service manager does: SIGTERM to the process it started (`tierwise serve`)."""
    import signal
    import socket
    import time

    service = _start(served_home.home, tmp_path / "serve.log")
    try:
        service.wait(timeout=START_TIMEOUT)
        service.process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        service.process.wait(timeout=30)
        stopped_after = time.monotonic() - started
    finally:
        if service.process.poll() is None:
            service.stop()
    assert stopped_after < 10, f"took {stopped_after:.1f} s"
    port = int(service.url.rsplit(":", 1)[1])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # free again
    with pytest.raises(ProcessLookupError):
        os.killpg(service.process.pid, 0)  # nothing of its process group is left
