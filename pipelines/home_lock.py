"""One writer at a time per home: every batch job that writes to a data home holds its lock.

`writes_home` wraps a job whose first argument is the `Settings` of the home: the job waits up to
`TIERWISE_LOCK_WAIT` seconds (default 30) for another writer, then fails with `StoreBusyError` (the
CLI's exit 4), and reads the live state only once it holds the lock. Jobs calling jobs (`run`) hold
it once: the lock is re-entrant within a process.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from features.data.store import DataStore, job_lock_wait
from features.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")


def writes_home(job: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(job)
    def locked(*args: P.args, **kwargs: P.kwargs) -> R:
        settings = args[0] if args else kwargs["settings"]
        assert isinstance(settings, Settings), f"{job.__name__}: the first argument is the home's Settings"
        with DataStore(settings.data_dir).writing(job_lock_wait()):
            return job(*args, **kwargs)

    return locked
