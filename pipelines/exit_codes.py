"""Exit codes a scheduler can branch on."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # an unexpected error: a bug or a broken environment
    USAGE = 2  # wrong command-line usage (Typer/Click's own code)
    BAD_INPUT = 3  # the data, a file or an option cannot be used; the message says which
    BUSY = 4  # another process is writing the same data home; retry later
    ALERT = 5  # the job ran and an alert fired
