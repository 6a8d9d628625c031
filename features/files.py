"""Writing result files atomically: a reader sees the old file or the new one, never half of one.

Also the one reader of users' YAML files. Every file Tierwise writes outside the versioned data store
(snapshots of tiers and features, exports, alert records, reports, `feature_store.yaml`) goes through
`write_atomically`: the content is written to a new file created exclusively beside the target (a
unique name, so a link planted at a fixed temporary name cannot redirect it), flushed to disk, renamed
over the target in one `os.replace`, and the folder's entry is flushed too. A target that is itself a
symbolic link is refused: Tierwise never writes through a link.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import yaml

from features.errors import InputError

#: Permissions of written files (before the umask): readable by the services that serve them.
FILE_MODE = 0o644


def write_atomically(path: Path, write: Callable[[Path], object]) -> Path:
    """Let `write` fill a fresh temporary file beside `path`, then make it `path` in one rename.

    Raises:
        InputError: `path` is a symbolic link.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        raise InputError(f"{path}: is a symbolic link; Tierwise does not write through links")
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(handle)
    partial = Path(name)
    try:
        write(partial)
        os.chmod(partial, FILE_MODE)
        fsync_path(partial)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    fsync_path(path.parent)
    return path


def write_text_atomically(text: str, path: Path) -> Path:
    """Write `text` to `path` (folders created) in one rename."""
    return write_atomically(path, lambda partial: partial.write_text(text))


def write_frame_atomically(frame: pd.DataFrame, path: Path) -> Path:
    """Write `frame` as CSV when `path` ends in `.csv`, else Parquet, in one rename (folders created).

    Parquet times are stored in microseconds, whatever the frame's unit (pandas' nanoseconds, a
    date's milliseconds), as DuckDB writes the feature snapshots and Spark writes its tier snapshots:
    one schema whichever engine wrote a file. A part below the microsecond is dropped.
    """
    if Path(path).suffix.lower() == ".csv":
        return write_atomically(path, lambda partial: frame.to_csv(partial, index=False))
    return write_atomically(
        path,
        lambda partial: frame.to_parquet(
            partial, index=False, coerce_timestamps="us", allow_truncated_timestamps=True
        ),
    )


def export_parquet(path: Path, output: Path) -> Path:
    """Copy the Parquet file at `path` to `output` in one rename: as it is, or as CSV when `output`
    ends in `.csv` (as `DataFrame.to_csv` writes it, a row group at a time, so any size fits)."""
    if Path(output).suffix.lower() != ".csv":
        return write_atomically(output, lambda partial: shutil.copyfile(path, partial))

    def write(partial: Path) -> None:
        for number, batch in enumerate(pq.ParquetFile(path).iter_batches()):
            batch.to_pandas().to_csv(
                partial, index=False, header=number == 0, mode="w" if number == 0 else "a"
            )

    return write_atomically(output, write)


def fsync_path(path: Path) -> None:
    """Flush a file's content, or a folder's entries, to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_yaml(path: Path) -> Any:
    """Parse a user's YAML file; an unreadable or invalid file is an `InputError` naming it."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML: {exc}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the file: {exc}") from None
