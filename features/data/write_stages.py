"""Named points in a write where a test can stop the writer, to kill it at exactly that point.

`reached(stage)` does nothing unless `TIERWISE_STOP_AT` names that stage; then the process stops
itself (SIGSTOP). A test sees it stopped, knows it was still running there, kills it (SIGKILL) and
checks that the home is whole: the crash-safety of each stage is tested, not guessed from sleeps.
"""

from __future__ import annotations

import os
import signal

STOP_AT_ENV = "TIERWISE_STOP_AT"
#: In the order an import passes them.
STAGES = (
    "draft_linked",  # the new version exists as hard links of the live one
    "orders_written",  # new orders are in the draft, the rest of the tables not yet
    "tables_written",  # every table of the draft is written, not yet flushed to disk
    "draft_synced",  # the draft is on disk; the live link still points to the old version
    "live_switched",  # the new version is live; old versions not yet removed
)


def reached(stage: str) -> None:
    """Mark that a write has reached `stage` (one of `STAGES`)."""
    if os.environ.get(STOP_AT_ENV) == stage:
        os.kill(os.getpid(), signal.SIGSTOP)
