"""Worker processes for CPU-bound Python that threads cannot share out (the GIL holds it).

On Linux the workers are forked: they inherit what the parent imported and loaded (Feast, models, a
registry) instead of importing and loading it again, which costs seconds. Elsewhere they are spawned,
and whatever they are given must pickle.
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

#: Whether workers inherit the parent's objects (fork) rather than receiving them pickled (spawn).
FORKS = sys.platform == "linux"


def worker_pool(
    processes: int, initializer: Callable[..., Any] | None = None, initargs: tuple = ()
) -> ProcessPoolExecutor | None:
    """A pool of `processes` workers, or None when none is asked for. With fork, `initargs` reach
    the workers as they are, unpickled."""
    if processes < 1:
        return None
    context = multiprocessing.get_context("fork" if FORKS else "spawn")
    return ProcessPoolExecutor(processes, mp_context=context, initializer=initializer, initargs=initargs)
