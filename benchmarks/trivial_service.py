"""The framework's own ceiling: a BentoML service that answers a constant, configured like Tierwise's.

`bench_service` loads it with the same requests as the real service, in the same run, so the real
service's throughput and latency are read as ratios to what BentoML itself manages on this machine.
`/raw` is the fastest path BentoML has: an `async` handler returning constant bytes (1.6 KB, see
`RAW_BODY`) as a ready response; `/predict` returns a pydantic model through BentoML's output.
"""

from __future__ import annotations

import bentoml
from pydantic import BaseModel
from starlette.responses import Response

from serving.config import ServeConfig
from serving.service import freeze_heap

CONFIG = ServeConfig.from_env()
#: 1.6 KB, the answer size of the prototype the issue measured; a Complete Journey answer with its
#: reasons and offers is about 3.3 KB (median), so this reference sends less than `predict` does.
RAW_BODY = b'{"customer_id":"0","padding":"' + b"x" * 1600 + b'"}'


class Request(BaseModel):
    customer_id: str


class Answer(BaseModel):
    customer_id: str
    churn_probability: float


@bentoml.service(
    name="trivial",
    workers=CONFIG.workers,
    traffic={"timeout": CONFIG.timeout_seconds, "max_concurrency": CONFIG.max_concurrency},
    tracing=CONFIG.bentoml_tracing,
)
class Trivial:
    def __init__(self) -> None:
        freeze_heap()  # as Tierwise does once loaded: no full collection stalls a request

    @bentoml.api(route="/predict", input_spec=Request, output_spec=Answer)
    async def predict(self, customer_id: str) -> Answer:
        return Answer(customer_id=customer_id, churn_probability=0.5)

    @bentoml.api(route="/raw", input_spec=Request, output_spec=Answer)
    async def raw(self, customer_id: str) -> Response:
        return Response(RAW_BODY, media_type="application/json")
