"""Admission control: requests beyond the limit are refused at once with 429 and `Retry-After`, even
when every answer is ready without waiting (a stored answer served on the event loop)."""

from __future__ import annotations

import asyncio

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from serving.admission import Admission


async def answer_instantly(_: Request) -> Response:
    """An answer that needs no wait, as a stored answer read on the event loop."""
    return Response(b'{"ok": true}', media_type="application/json")


def app(limit: int) -> Admission:
    routes = [Route("/predict", answer_instantly, methods=["POST"]), Route("/readyz", answer_instantly)]
    return Admission(Starlette(routes=routes), limit=limit)


async def burst(guarded: Admission, path: str, count: int) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=guarded)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        method = client.post if path == "/predict" else client.get
        return await asyncio.gather(*(method(path) for _ in range(count)))


def test_arrivals_beyond_the_limit_are_shed_with_retry_after_though_answers_never_wait():
    answers = asyncio.run(burst(app(limit=3), "/predict", 10))
    assert [r.status_code for r in answers].count(200) == 3
    shed = [r for r in answers if r.status_code == 429]
    assert len(shed) == 7
    assert all(r.headers["retry-after"] == "1" and r.json()["code"] == "overloaded" for r in shed)


def test_admitted_requests_are_served_in_arrival_order_and_the_newest_are_shed():
    answers = asyncio.run(burst(app(limit=2), "/predict", 5))
    assert [r.status_code for r in answers] == [200, 200, 429, 429, 429]


def test_requests_after_a_burst_are_admitted_again():
    guarded = app(limit=2)
    asyncio.run(burst(guarded, "/predict", 6))
    assert [r.status_code for r in asyncio.run(burst(guarded, "/predict", 2))] == [200, 200]


def test_health_checks_are_never_shed():
    assert {r.status_code for r in asyncio.run(burst(app(limit=1), "/readyz", 5))} == {200}
