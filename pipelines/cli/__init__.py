"""The `tierwise` command line: one module per command group, sharing `pipelines.cli.app`.

Errors about the user's input are printed as one message and exit with `ExitCode.BAD_INPUT`;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys

from features.errors import InputError
from pipelines.cli import campaigns, data, features, models, monitor, personas, serve, tiers, ui  # noqa: F401  (they register the commands)
from pipelines.cli.app import ModelChoice, ModelName, app, console
from pipelines.exit_codes import ExitCode

__all__ = ["ModelChoice", "ModelName", "app", "main"]


#: Options of the whole program; accepted after a subcommand too (`tierwise score --home H`).
GLOBAL_FLAGS = ("--verbose", "-v")
GLOBAL_VALUED = ("--home", "--engine")


def global_options_first(args: list[str]) -> list[str]:
    """`args` with the global options moved in front of the subcommands, where Click reads them.

    People type `tierwise score --as-of 2017-12-03 --home /srv/tierwise`; Click accepts a group's
    options only before its subcommand. Nothing after `--` is moved.
    """
    moved, rest = [], []
    position = 0
    while position < len(args):
        arg = args[position]
        if arg == "--":
            rest += args[position:]
            break
        if arg in GLOBAL_FLAGS:
            moved.append(arg)
        elif arg in GLOBAL_VALUED and position + 1 < len(args):
            moved += args[position : position + 2]
            position += 1
        elif arg.split("=", 1)[0] in GLOBAL_VALUED:
            moved.append(arg)
        else:
            rest.append(arg)
        position += 1
    return moved + rest


def main() -> None:
    """Entry point: user errors become one line and a distinct exit code, not a traceback."""
    from features.data.store import StoreBusyError

    try:
        app(args=global_options_first(sys.argv[1:]))
    except InputError as exc:
        console.print(f"[red]error:[/red] {exc}", soft_wrap=True)  # one line, however long
        sys.exit(ExitCode.BAD_INPUT)
    except StoreBusyError as exc:
        console.print(f"[red]busy:[/red] {exc}", soft_wrap=True)
        sys.exit(ExitCode.BUSY)
