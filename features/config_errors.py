"""Errors in a user's YAML configuration (policies, campaigns), named by field path.

pydantic reports `('tiers', 1, 'share')`; a merchandiser reads `tiers[1].share: must be between 0
and 1`, and for a misspelt field the fields that exist.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from features.errors import InputError


def validated(model: type[BaseModel], data: Any, source: str, what: str) -> Any:
    """`data` validated into `model`, or an `InputError` naming `source` and each bad field path."""
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a mapping of {what} fields, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(describe(error, model) for error in exc.errors())
        raise InputError(f"{source}: invalid {what}: {problems}") from None


def describe(error: Any, root: type[BaseModel]) -> str:
    """One pydantic error as `path: message`, with the allowed fields for an unknown one."""
    location = error["loc"]
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in location).lstrip(".")
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = f"unknown field (allowed: {', '.join(allowed_fields(root, location))})"
    elif error["type"] not in ("value_error", "missing") and "input" in error:
        message = f"{message}, got {error['input']!r}"
    return f"{path}: {message}" if path else message


def allowed_fields(root: type[BaseModel], location: tuple[Any, ...]) -> list[str]:
    """The fields of the model that holds the last part of `location`."""
    model = root
    for part in location[:-1]:
        if isinstance(part, str) and part in model.model_fields:
            nested = _model_in(model.model_fields[part].annotation)
            if nested is not None:
                model = nested
    return list(model.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as `tuple[Tier, ...]` or `Weights | None`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for argument in typing.get_args(annotation):
            found = _model_in(argument)
            if found is not None:
                return found
    return None
