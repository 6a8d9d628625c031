"""Result files written by Spark in the layout every reader expects: one Parquet file per key, renamed
into place whole.

Spark writes a folder of part files. Each key's rows are sent to one task (`repartition` by the key),
so each key becomes one file in a staging folder beside the targets, which is then renamed to its
target (`features.files.write_atomically`): a reader never sees half a file, and the staging folder is
removed whatever happens.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path

import pyarrow.parquet as pq
from pyspark.sql import DataFrame

from features.files import write_atomically


def write_file_per_key(
    frame: DataFrame,
    key: str,
    targets: dict[str, Path],
    staging: Path,
    order: list[str],
    options: Mapping[str, str] | None = None,
) -> dict[str, int]:
    """Write the rows of each value of `frame`'s text column `key` to the file `targets[value]`
    (without the key column), sorted by `order`. Returns rows per key.

    Args:
        staging: A folder on the targets' file system; Spark's output goes to a new folder in it.
        options: Options of Spark's Parquet writer (`parquet.block.size`: bytes per row group).

    Raises:
        RuntimeError: Spark wrote no file or several files for a key.
    """
    folder = staging / f".spark-{uuid.uuid4().hex}"
    try:
        ordered = frame.repartition(key).sortWithinPartitions(key, *order)
        ordered.write.options(**(options or {})).partitionBy(key).parquet(str(folder))
        return {
            value: _move_into_place(folder / f"{key}={value}", target) for value, target in targets.items()
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _move_into_place(written: Path, target: Path) -> int:
    """Rename the one file Spark wrote in `written` to `target`; returns its rows."""
    parts = sorted(written.glob("*.parquet"))
    if len(parts) != 1:
        raise RuntimeError(f"Spark wrote {len(parts)} files for {written.name}, expected one")
    write_atomically(target, lambda partial: os.replace(parts[0], partial))
    return pq.read_metadata(target).num_rows
