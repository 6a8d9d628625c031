"""The prediction service's settings, in one typed place, read from the environment once.

`tierwise serve` sets these variables for the BentoML process it starts; a container sets them
directly. Where data and models live comes from `features.settings.Settings` (`TIERWISE_HOME`,
`TIERWISE_ONLINE_STORE`, `TIERWISE_MLFLOW_URI`), never from the working directory.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from features.catalog import VIEWS
from features.errors import InputError
from training.reasons import SENSITIVE_VIEWS

REASONS_EXCLUDE_ENV = "TIERWISE_REASONS_EXCLUDE"
TOKEN_ENV = "TIERWISE_API_TOKEN"
READ_TOKEN_ENV = "TIERWISE_READ_TOKEN"
TOKEN_FILE_ENV = "TIERWISE_TOKEN_FILE"
#: Shortest token accepted: a guessable token is worse than none, which at least limits callers to localhost.
MIN_TOKEN_LENGTH = 16
#: Host names served when `TIERWISE_ALLOWED_HOSTS` is not set.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


class TokenScope(StrEnum):
    """What a token may do: `read` answers questions, `admin` also changes what is served."""

    READ = "read"
    ADMIN = "admin"


@dataclass(frozen=True)
class ServeConfig:
    """
    Attributes:
        policy: Tier policy whose latest snapshot answers `tier` (`TIERWISE_POLICY`).
        max_batch: Most ids in one `predict_batch` call (`TIERWISE_MAX_BATCH`).
        max_concurrency: Requests in flight per service before new ones get 429 — excess load is shed,
            not queued without bound (`TIERWISE_MAX_CONCURRENCY`).
        timeout_seconds: A request running longer is answered 504 (`TIERWISE_TIMEOUT`).
        reload_seconds: Check for a new champion every this many seconds; 0 = only on `POST /reload`
            (`TIERWISE_RELOAD_SECONDS`).
        workers: Server processes (`TIERWISE_WORKERS`).
        threads: Threads per worker for the synchronous handlers (order events, what-if scoring,
            reload; `predict` is async). BentoML's default, one, runs them one at a time, so order
            events sent together could not be applied together (`TIERWISE_THREADS`).
        tokens: API tokens and their scopes, from `TIERWISE_API_TOKEN` (admin), `TIERWISE_READ_TOKEN`
            (read) and `TIERWISE_TOKEN_FILE` (lines `<scope> <token>`, readable by its owner only).
            None configured: reads from 127.0.0.1 only, no admin calls (see `serving.access`).
        allowed_hosts: Host names requests may be addressed to; `*` for any, when a proxy in front
            checks them (`TIERWISE_ALLOWED_HOSTS`, comma-separated).
        allowed_origins: Browser origins allowed besides the service's own, e.g. a staff dashboard
            (`TIERWISE_ALLOWED_ORIGINS`, comma-separated).
        max_body_bytes: Largest request body (`TIERWISE_MAX_BODY_BYTES`).
        reason_excluded_views: Feature views never given to callers as reasons
            (`TIERWISE_REASONS_EXCLUDE`, comma-separated views; `none` to exclude none). Default:
            household attributes (age, income, family), personal data no caller needs as a "why".
        tracing: OpenTelemetry spans per request (`TIERWISE_TRACING`: `on` or `off`, the default).
            BentoML wraps every request in spans even when none is sampled or exported; on this
            machine that was the largest part of a request's cost in the framework (`bentoml_tracing`).
    """

    policy: str = "lifecycle"
    max_batch: int = 1000
    max_concurrency: int = 32
    timeout_seconds: int = 10
    reload_seconds: int = 0
    workers: int = 1
    threads: int = 8
    tokens: dict[str, TokenScope] = field(default_factory=dict, repr=False)
    allowed_hosts: tuple[str, ...] = LOCAL_HOSTS
    allowed_origins: tuple[str, ...] = ()
    max_body_bytes: int = 1_048_576
    reason_excluded_views: frozenset[str] = SENSITIVE_VIEWS
    tracing: bool = False

    @property
    def bentoml_tracing(self) -> dict[str, str]:
        """The `tracing` configuration of the BentoML services: with tracing off, every path is
        excluded from OpenTelemetry's ASGI middleware, which then passes each request straight
        through; on, BentoML's own tracing settings (exporter, sample rate) apply."""
        return {} if self.tracing else {"excluded_urls": ".*"}

    @classmethod
    def from_env(cls) -> ServeConfig:
        return cls(
            policy=os.environ.get("TIERWISE_POLICY", cls.policy),
            max_batch=_positive("TIERWISE_MAX_BATCH", cls.max_batch),
            max_concurrency=_positive("TIERWISE_MAX_CONCURRENCY", cls.max_concurrency),
            timeout_seconds=_positive("TIERWISE_TIMEOUT", cls.timeout_seconds),
            reload_seconds=_positive("TIERWISE_RELOAD_SECONDS", cls.reload_seconds, allow_zero=True),
            workers=_positive("TIERWISE_WORKERS", cls.workers),
            threads=_positive("TIERWISE_THREADS", cls.threads),
            tokens=_tokens(),
            allowed_hosts=_names("TIERWISE_ALLOWED_HOSTS") or LOCAL_HOSTS,
            allowed_origins=_names("TIERWISE_ALLOWED_ORIGINS"),
            max_body_bytes=_positive("TIERWISE_MAX_BODY_BYTES", cls.max_body_bytes),
            reason_excluded_views=_views(REASONS_EXCLUDE_ENV, cls.reason_excluded_views),
            tracing=_switch("TIERWISE_TRACING", cls.tracing),
        )

    def environment(self) -> dict[str, str]:
        """The variables that reproduce this configuration in another process."""
        return {
            "TIERWISE_POLICY": self.policy,
            "TIERWISE_MAX_BATCH": str(self.max_batch),
            "TIERWISE_MAX_CONCURRENCY": str(self.max_concurrency),
            "TIERWISE_TIMEOUT": str(self.timeout_seconds),
            "TIERWISE_RELOAD_SECONDS": str(self.reload_seconds),
            "TIERWISE_WORKERS": str(self.workers),
            "TIERWISE_THREADS": str(self.threads),
            "TIERWISE_ALLOWED_HOSTS": ",".join(self.allowed_hosts),
            "TIERWISE_ALLOWED_ORIGINS": ",".join(self.allowed_origins),
            "TIERWISE_MAX_BODY_BYTES": str(self.max_body_bytes),
            REASONS_EXCLUDE_ENV: ",".join(sorted(self.reason_excluded_views)) or "none",
            "TIERWISE_TRACING": "on" if self.tracing else "off",
        }


def _positive(variable: str, default: int, allow_zero: bool = False) -> int:
    text = os.environ.get(variable)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise InputError(f"{variable}={text!r}: expected a whole number") from None
    if value < 0 or (value == 0 and not allow_zero):
        raise InputError(f"{variable}={text!r}: must be {'0 or more' if allow_zero else 'at least 1'}")
    return value


_SWITCH_WORDS = {
    "on": True,
    "true": True,
    "1": True,
    "yes": True,
    "off": False,
    "false": False,
    "0": False,
    "no": False,
}


def _switch(variable: str, default: bool) -> bool:
    text = os.environ.get(variable, "").strip().lower()
    if not text:
        return default
    if text not in _SWITCH_WORDS:
        raise InputError(f"{variable}={text!r}: expected on or off")
    return _SWITCH_WORDS[text]


def _views(variable: str, default: frozenset[str]) -> frozenset[str]:
    text = os.environ.get(variable)
    if text is None or text.strip() == "":
        return default
    if text.strip().lower() == "none":
        return frozenset()
    views = frozenset(v.strip() for v in text.split(",") if v.strip())
    unknown = sorted(views - set(VIEWS))
    if unknown:
        raise InputError(f"{variable}: unknown view(s) {', '.join(unknown)}; views: {', '.join(VIEWS)}")
    return views


def _names(variable: str) -> tuple[str, ...]:
    return tuple(n.strip().lower() for n in os.environ.get(variable, "").split(",") if n.strip())


def _tokens() -> dict[str, TokenScope]:
    """Tokens from the environment and the token file; a short token or a readable file is refused."""
    given: list[tuple[str, str, str]] = []
    for variable, scope in ((TOKEN_ENV, TokenScope.ADMIN), (READ_TOKEN_ENV, TokenScope.READ)):
        if os.environ.get(variable):
            given.append((variable, scope, os.environ[variable].strip()))
    if os.environ.get(TOKEN_FILE_ENV):
        given += _token_file(Path(os.environ[TOKEN_FILE_ENV]))
    tokens: dict[str, TokenScope] = {}
    for where, scope, token in given:
        if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
            raise InputError(f"{where}: a token needs {MIN_TOKEN_LENGTH}+ characters and no spaces")
        tokens[token] = TokenScope(scope)
    return tokens


def _token_file(path: Path) -> list[tuple[str, str, str]]:
    try:
        mode = path.stat().st_mode
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"{TOKEN_FILE_ENV}={path}: cannot read it ({exc.strerror})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InputError(f"{TOKEN_FILE_ENV}={path}: others may read it; chmod 600 {path}")
    tokens = []
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        scope, _, token = line.strip().partition(" ")
        if scope not in set(TokenScope):
            raise InputError(f"{path}:{number}: expected '<read|admin> <token>', got scope {scope[:20]!r}")
        tokens.append((f"{path}:{number}", scope, token.strip()))
    return tokens
