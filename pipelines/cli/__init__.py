"""The `tierwise` command line: one module per command group, sharing `pipelines.cli.app`.

Errors about the user's input are printed as one message and exit with `ExitCode.BAD_INPUT`;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys

from features.errors import InputError
from pipelines.cli import data, features, models, monitor, serve, tiers  # noqa: F401  (they register the commands)
from pipelines.cli.app import ModelChoice, ModelName, app, console
from pipelines.exit_codes import ExitCode

__all__ = ["ModelChoice", "ModelName", "app", "main"]


def main() -> None:
    """Entry point: user errors become one line and a distinct exit code, not a traceback."""
    from features.data.store import StoreBusyError

    try:
        app()
    except InputError as exc:
        console.print(f"[red]error:[/red] {exc}")
        sys.exit(ExitCode.BAD_INPUT)
    except StoreBusyError as exc:
        console.print(f"[red]busy:[/red] {exc}")
        sys.exit(ExitCode.BUSY)
