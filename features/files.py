"""Writing result files atomically: a reader sees the old file or the new one, never half of one.

Also the one reader of users' YAML files. Every file Tierwise writes outside the versioned data store (snapshots of tiers, exports, alert
records, `feature_store.yaml`) goes through here: written beside the target as `<name>.partial`,
then renamed over it with one `os.replace`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from features.errors import InputError


def write_text_atomically(text: str, path: Path) -> Path:
    """Write `text` to `path` (folders created) in one rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)
    return path


def write_frame_atomically(frame: pd.DataFrame, path: Path) -> Path:
    """Write `frame` as CSV when `path` ends in `.csv`, else Parquet, in one rename (folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    if path.suffix.lower() == ".csv":
        frame.to_csv(partial, index=False)
    else:
        frame.to_parquet(partial, index=False)
    os.replace(partial, path)
    return path


def read_yaml(path: Path) -> Any:
    """Parse a user's YAML file; an unreadable or invalid file is an `InputError` naming it."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML: {exc}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the file: {exc}") from None
