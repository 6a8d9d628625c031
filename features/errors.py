"""Errors that mean "the input is wrong": the CLI prints them without a traceback and exits with a data error."""


class InputError(ValueError):
    """A file, mapping, date or option the user gave cannot be used; the message says which and why."""
