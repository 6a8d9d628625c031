"""Admission control: at most `max_concurrency` requests in flight, the rest refused at once with
429 and `Retry-After`, so load beyond capacity is shed instead of queued without bound.

BentoML's own limit counts the requests that have entered its middleware and not finished. With
`predict` answering a stored answer on the event loop, a request runs from start to end without
giving the loop back, so that count never exceeds one while arrivals wait in the loop's queue
unseen: at twice the sustainable rate latency grew without a single 429. Here each admitted request
yields to the loop once after it is counted, so every request the server has read is counted before
any of them is answered, and arrivals beyond the limit are refused before any work is done (the
newest are shed, the admitted ones are served in order).
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from starlette.types import ASGIApp, Message, Receive, Send

from serving.access import HEALTH_PATHS, error_answer

logger = logging.getLogger("tierwise.service")
#: What a shed caller is told to wait before trying again, in seconds.
RETRY_AFTER_SECONDS = 1


class Admission:
    """ASGI middleware admitting at most `limit` requests at a time (health checks always pass)."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app = app
        self.limit = limit
        self.in_flight = 0
        self.shed = 0

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in HEALTH_PATHS:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            self.shed += 1
            await error_answer(
                send,
                429,
                "overloaded",
                f"more than {self.limit} requests in flight; retry after {RETRY_AFTER_SECONDS} s",
                uuid.uuid4().hex[:16],
                headers=[(b"retry-after", str(RETRY_AFTER_SECONDS).encode())],
            )
            return
        self.in_flight += 1
        try:
            await asyncio.sleep(0)  # counted; now let the loop start (and count) the other arrivals
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
