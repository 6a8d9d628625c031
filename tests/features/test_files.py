"""Safe writes: atomic, exclusive temporary files, never through a symbolic link."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.data.store import DataStore
from features.errors import InputError
from features.files import write_frame_atomically, write_text_atomically


def test_a_link_planted_at_the_old_temporary_name_is_left_alone(tmp_path: Path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    target = tmp_path / "alerts.json"
    (tmp_path / "alerts.json.partial").symlink_to(victim)
    write_text_atomically("[]", target)
    assert victim.read_text() == "keep me" and target.read_text() == "[]"


def test_a_target_that_is_a_link_is_refused(tmp_path: Path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    target = tmp_path / "report.html"
    target.symlink_to(victim)
    with pytest.raises(InputError, match="is a symbolic link"):
        write_text_atomically("<html>", target)
    assert victim.read_text() == "keep me"


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path: Path):
    target = tmp_path / "tiers.parquet"
    write_frame_atomically(pd.DataFrame({"a": [1]}), target)
    with pytest.raises(Exception):  # noqa: B017  (pyarrow cannot write an object of this type)
        write_frame_atomically(pd.DataFrame({"a": [object()]}), target)
    assert pd.read_parquet(target).a.tolist() == [1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiers.parquet"]


def test_parquet_times_are_written_in_microseconds_whatever_the_frames_unit(tmp_path: Path):
    """As DuckDB and Spark write them: one schema whichever engine wrote a snapshot."""
    frame = pd.DataFrame(
        {
            "at": pd.to_datetime(["2017-10-01 12:00:00.123456789"], utc=True),
            "day": pd.Series([pd.Timestamp("2017-10-01")]).astype("datetime64[ms]"),
            "since": pd.Series([pd.NaT], dtype="datetime64[ns]"),
        }
    )
    path = write_frame_atomically(frame, tmp_path / "tiers.parquet")
    assert [field.type for field in pq.read_schema(path)] == [
        pa.timestamp("us", "UTC"),
        pa.timestamp("us"),
        pa.timestamp("us"),
    ]
    assert pd.read_parquet(path)["at"].tolist() == [pd.Timestamp("2017-10-01 12:00:00.123456", tz="UTC")]


def test_written_files_are_readable_by_other_users(tmp_path: Path):
    path = write_text_atomically("x", tmp_path / "page.html")
    assert os.stat(path).st_mode & 0o044 == 0o044


def test_the_store_lock_does_not_truncate_a_file_linked_at_its_name(tmp_path: Path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    root = tmp_path / "data"
    root.mkdir()
    (root / ".lock").symlink_to(victim)
    with pytest.raises(InputError, match="cannot open the lock file"), DataStore(root).transaction():
        pass
    assert victim.read_text() == "keep me"
