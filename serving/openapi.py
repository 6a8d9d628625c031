"""The OpenAPI document at `/docs.json` (and the page at `/`), completed for the people who call us.

BentoML generates the document from the service: paths, request and response schemas. It names the
API after the service, shows version "None", BentoML's contact, examples of `"string"`, and only the
statuses 200/400/404/500. `ApiDocument` serves BentoML's document amended with what a backend
engineer needs: the title, description and version, the bearer-token scheme, a working example of
every request and answer, and every status each route can return with the error shape.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from serving.access import ADMIN_PATHS, HEALTH_PATHS, Message, Receive, Send

DOCUMENT_PATH = "/docs.json"
TITLE = "Tierwise prediction API"
DESCRIPTION = (
    "Churn probability, expected value and growth potential per customer, with the tier, risk flags and "
    "the reasons in words. Send `Authorization: Bearer <token>`: read tokens call the prediction routes, "
    "admin tokens also `/reload`. Without a configured token the service answers reads from 127.0.0.1 "
    "only. Every error answer has `error` (for people), `code` (for programs) and `request_id` (also "
    "in the `X-Request-ID` header and the service log)."
)

_PREDICTION = {
    "customer_id": "1002",
    "status": "ok",
    "churn_probability": 0.07,
    "expected_value": 412.5,
    "growth_potential": 0.31,
    "horizon_days": 90,
    "tier": "Gold",
    "tier_rule": "expected value in the top 15% of active customers",
    "tier_source": "snapshot",
    "risk_flags": [],
    "reasons": {
        "churn": [
            {
                "feature": "days_since_last_order",
                "description": "Days since the last order",
                "value": 4.0,
                "effect": "lowers",
                "size": -0.03,
                "text": "Days since the last order is 4 days: lowers the churn probability by 3 points",
            }
        ]
    },
    "model_versions": {"churn": 3, "customer_value": 2, "growth_potential": 2},
    "model_sources": {
        "churn": "champion v3",
        "customer_value": "champion v2",
        "growth_potential": "champion v2",
    },
    "features_as_of": "2017-12-03",
}
#: A working request and answer per route.
EXAMPLES: dict[str, tuple[dict | None, dict]] = {
    "/predict": ({"customer_id": "1002"}, _PREDICTION),
    "/predict_batch": (
        {"customer_ids": ["1002", "no-such-id"]},
        {
            "predictions": [
                _PREDICTION,
                {"customer_id": "no-such-id", "status": "not_found", "error": "no features for no-such-id"},
            ],
            "found": 1,
            "cold_start": 0,
            "not_found": 1,
        },
    ),
    "/score_features": (
        {
            "customer_id": "what-if",
            "features": {"days_since_last_order": 40, "tenure_days": 400, "orders_365d": 12},
        },
        {**_PREDICTION, "customer_id": "what-if", "tier_source": "policy", "features_as_of": None},
    ),
    "/reload": (None, {"changed": True, "model_versions": {"churn": 4, "customer_value": 2}}),
}
#: Why each status happens, as callers need to know it.
STATUSES = {
    400: "The body is not JSON or breaks the contract; `field` names the first field at fault.",
    401: "No token, or not a valid one.",
    403: "The token lacks the scope, the Origin is another site's, or (no token configured) the caller is not local.",
    404: "No features for this customer id (`customer_id` repeats it).",
    409: "A reload is already running.",
    413: "The request body is larger than the service accepts.",
    415: "The body is not `application/json`.",
    422: "A value is out of range (too many ids, an unknown feature, a number too large).",
    429: "More requests in flight than the service takes at once: retry after a short wait.",
    503: "Models or feature store not available; the reason is in `error`, details in the log.",
    504: "The request took longer than the service's timeout.",
}
ROUTE_STATUSES = {
    "/predict": (400, 401, 403, 404, 413, 415, 422, 429, 503, 504),
    "/predict_batch": (400, 401, 403, 413, 415, 422, 429, 503, 504),
    "/score_features": (400, 401, 403, 413, 415, 422, 429, 503, 504),
    "/reload": (401, 403, 409, 429, 503),
    "/admin/version": (401, 403, 503),
}
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "code", "request_id"],
    "properties": {
        "error": {"type": "string", "description": "What went wrong, for people."},
        "code": {"type": "string", "description": "Stable code for programs.", "example": "not_found"},
        "request_id": {"type": "string", "description": "Repeated in the X-Request-ID header and the log."},
        "field": {"type": "string", "description": "The request field at fault, when there is one."},
    },
}


def api_document(generated: dict[str, Any], version: str) -> dict[str, Any]:
    """BentoML's generated document with our title, version, security, examples and statuses."""
    document = copy.deepcopy(generated)
    document["info"] = {"title": TITLE, "description": DESCRIPTION, "version": version}
    components = document.setdefault("components", {})
    components.setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    for path, item in document.get("paths", {}).items():
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            if path in HEALTH_PATHS:
                operation["security"] = []
                continue
            operation["security"] = [{"bearer": ["admin" if path in ADMIN_PATHS else "read"]}]
            _complete(path, operation)
    return document


def _complete(path: str, operation: dict[str, Any]) -> None:
    request, answer = EXAMPLES.get(path, (None, None))
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if body is not None and request is not None:
        body["example"] = request
    responses = operation["responses"]
    ok = responses.get("200") or responses.get(200)
    if ok is not None and answer is not None:
        ok.setdefault("content", {}).setdefault("application/json", {})["example"] = answer
    for status in [s for s in list(responses) if str(s) != "200"]:
        del responses[status]
    for status in ROUTE_STATUSES.get(path, ()):
        responses[str(status)] = {
            "description": STATUSES[status],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }


class ApiDocument:
    """ASGI middleware answering `GET /docs.json` with `api_document` (built once, on first request)."""

    def __init__(self, app: Callable, generated: Callable[[], dict], version: Callable[[], str]):
        self.app = app
        self._generated, self._version = generated, version
        self._body: bytes | None = None

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != DOCUMENT_PATH or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        if self._body is None:
            self._body = json.dumps(api_document(self._generated(), self._version())).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(self._body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self._body})
