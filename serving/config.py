"""The prediction service's settings, in one typed place, read from the environment once.

`tierwise serve` sets these variables for the BentoML process it starts; a container sets them
directly. Where data and models live comes from `features.settings.Settings` (`TIERWISE_HOME`,
`TIERWISE_ONLINE_STORE`, `TIERWISE_MLFLOW_URI`), never from the working directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from features.errors import InputError


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
    """

    policy: str = "lifecycle"
    max_batch: int = 1000
    max_concurrency: int = 32
    timeout_seconds: int = 10
    reload_seconds: int = 0
    workers: int = 1

    @classmethod
    def from_env(cls) -> ServeConfig:
        return cls(
            policy=os.environ.get("TIERWISE_POLICY", cls.policy),
            max_batch=_positive("TIERWISE_MAX_BATCH", cls.max_batch),
            max_concurrency=_positive("TIERWISE_MAX_CONCURRENCY", cls.max_concurrency),
            timeout_seconds=_positive("TIERWISE_TIMEOUT", cls.timeout_seconds),
            reload_seconds=_positive("TIERWISE_RELOAD_SECONDS", cls.reload_seconds, allow_zero=True),
            workers=_positive("TIERWISE_WORKERS", cls.workers),
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
