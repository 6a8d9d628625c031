"""Who may call what, checked before any handler runs: tokens and scopes, Host, Origin, body size.

`Guard` is ASGI middleware in front of every BentoML route (`Tierwise.add_asgi_middleware`):
- **Tokens.** A caller sends `Authorization: Bearer <token>`. A token has the `read` scope (predict,
  batch, what-if, version, metrics, the OpenAPI page) or the `admin` scope (also `/reload`, and
  `/orders`, which writes order events). Health probes (`/livez`, `/readyz`) need none. With no token
  configured the service answers reads from 127.0.0.1 only and refuses admin calls: a fresh install is usable on the laptop and closed elsewhere.
- **Host.** Requests must name one of the configured host names, so a DNS-rebinding page cannot reach
  a service on localhost through a name it controls.
- **Origin and media type.** A browser sends `Origin` with every cross-site POST; one from another site
  is refused, and bodies must be `application/json`, which an HTML form cannot send. A page in a
  browser therefore cannot make the service act, with or without a token.
- **Body size.** Bodies over `max_body_bytes` are refused (413) before any is parsed.

Refusals, and BentoML's own error answers (a body that is not JSON, a failed validation), carry the
same shape as the service's errors: `error`, a stable `code` and a `request_id` that the log repeats.
"""

from __future__ import annotations

import hmac
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from serving.config import ServeConfig, TokenScope

logger = logging.getLogger("tierwise.access")

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Message, Receive, Send], Awaitable[None]]

#: Routes anyone may call: orchestrators probe them without credentials.
HEALTH_PATHS = frozenset({"/livez", "/readyz", "/healthz"})
#: Routes that change what the service serves.
ADMIN_PATHS = frozenset({"/reload", "/orders"})
LOOPBACK = frozenset({"127.0.0.1", "::1"})
#: The `code` of an error answer that has none (BentoML's own answers), by status.
STATUS_CODES = {
    400: "invalid_input",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    422: "invalid_input",
    429: "overloaded",
    500: "internal_error",
    503: "unavailable",
    504: "timeout",
}


class Guard:
    """ASGI middleware enforcing `ServeConfig`'s access settings (read once, when the app is built)."""

    def __init__(self, app: ASGIApp, config: ServeConfig | None = None):
        self.app = app
        self.config = config or ServeConfig.from_env()

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in HEALTH_PATHS:
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex[:16]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            status, code, message = refusal
            logger.warning(
                "tierwise: %s %s refused %s (request %s)", scope["method"], scope["path"], status, request_id
            )
            await error_answer(send, status, code, message, request_id, bearer=status == 401)
            return
        body = await _read_body(receive, self.config.max_body_bytes)
        if body is None:
            await error_answer(
                send,
                413,
                "body_too_large",
                f"request body over {self.config.max_body_bytes} bytes",
                request_id,
            )
            return
        await self.app(scope, _replay(body), _with_error_shape(send, request_id, scope["path"]))

    def _refusal(self, scope: Message, headers: dict[str, str]) -> tuple[int, str, str] | None:
        config = self.config
        host = _host_name(headers.get("host", ""))
        if "*" not in config.allowed_hosts and host not in config.allowed_hosts:
            return 400, "host_not_allowed", "Host header names a host this service does not serve"
        origin = headers.get("origin")
        if (
            origin is not None
            and origin not in config.allowed_origins
            and _authority(origin) != headers.get("host", "").lower()
        ):
            return 403, "origin_not_allowed", f"requests from origin {origin[:100]!r} are not allowed"
        length = headers.get("content-length", "0")
        if not length.isdigit():
            return 400, "invalid_input", "Content-Length must be a whole number"
        if int(length) > config.max_body_bytes:
            return 413, "body_too_large", f"request body over {config.max_body_bytes} bytes"
        media = headers.get("content-type", "").split(";")[0].strip().lower()
        if (int(length) or "chunked" in headers.get("transfer-encoding", "")) and media != "application/json":
            return 415, "unsupported_media_type", "request bodies must be application/json"
        needed = TokenScope.ADMIN if scope["path"] in ADMIN_PATHS else TokenScope.READ
        if not config.tokens:
            if needed is TokenScope.ADMIN:
                return (
                    403,
                    "admin_needs_token",
                    "admin calls need a token: set TIERWISE_API_TOKEN for the service",
                )
            client = (scope.get("client") or ("", 0))[0]
            if client not in LOOPBACK:
                return (
                    403,
                    "token_required",
                    "no API token is configured: this service answers 127.0.0.1 only",
                )
            return None
        kind, _, token = headers.get("authorization", "").partition(" ")
        granted = _scope_of(token.strip(), config.tokens) if kind.lower() == "bearer" else None
        if granted is None:
            return 401, "unauthorized", "send a valid API token as 'Authorization: Bearer <token>'"
        if needed is TokenScope.ADMIN and granted is not TokenScope.ADMIN:
            return 403, "forbidden", "this call needs a token with the admin scope"
        return None


def _scope_of(token: str, tokens: dict[str, TokenScope]) -> TokenScope | None:
    """The scope of `token`, compared in constant time against every configured token."""
    granted = None
    for known, scope in tokens.items():
        if hmac.compare_digest(token.encode(), known.encode()):
            granted = scope
    return granted


def _authority(origin: str) -> str:
    """`https://shop.example:8443` → `shop.example:8443`: same origin when it equals the Host header."""
    return origin.split("://", 1)[-1].split("/", 1)[0].lower()


def _host_name(authority: str) -> str:
    """`example.com:3000` → `example.com`; `[::1]:3000` → `::1`."""
    authority = authority.strip().lower()
    if authority.startswith("["):
        return authority[1:].split("]", 1)[0]
    return authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None once it exceeds `limit` (a chunked body has no length to check first)."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _with_error_shape(send: Send, request_id: str, path: str) -> Send:
    """`send` that gives error answers without a `code` (BentoML's own) the service's error shape."""
    start: Message | None = None
    chunks: list[bytes] = []

    async def shaped(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            headers = {k.lower() for k, _ in message.get("headers", [])}
            if message["status"] >= 400 and b"x-request-id" not in headers:
                start = message
                return
        elif start is not None and message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            status = start["status"]
            error, field = _error_text(b"".join(chunks), status)
            logger.info("tierwise: %s answered %s (request %s): %s", path, status, request_id, error)
            await error_answer(
                send, status, STATUS_CODES.get(status, "error"), error, request_id, field=field
            )
            return
        await send(message)

    return shaped


def _error_text(body: bytes, status: int) -> tuple[str, str | None]:
    """The caller-safe message of an error body and the first field it names: a validation error
    names the fields and what is wrong with them, never the input."""
    fallback = f"request failed with status {status}"
    try:
        content = json.loads(body)
    except ValueError:
        return fallback, None
    if isinstance(content, list) and content:
        content = content[0]
    if not isinstance(content, dict):
        return fallback, None
    message = str(content.get("error", fallback))
    details = content.get("detail")
    if not isinstance(details, list) or not details:
        return message[:500], None
    fields = [".".join(str(p) for p in d.get("loc", ())) for d in details[:5] if isinstance(d, dict)]
    problems = [f"{f}: {d.get('msg', '')}" for f, d in zip(fields, details, strict=False)]
    return "; ".join([message, *problems])[:500], (fields[0] if fields else None)


async def error_answer(
    send: Send,
    status: int,
    code: str,
    message: str,
    request_id: str,
    bearer: bool = False,
    field: str | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Send an error answer in the service's shape (`error`, `code`, `request_id`, maybe `field`)."""
    content = {"error": message, "code": code, "request_id": request_id}
    if field is not None:
        content["field"] = field
    body = json.dumps(content).encode()
    sent = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()),
        *(headers or []),
    ]
    if bearer:
        sent.append((b"www-authenticate", b'Bearer realm="tierwise"'))
    await send({"type": "http.response.start", "status": status, "headers": sent})
    await send({"type": "http.response.body", "body": body})
