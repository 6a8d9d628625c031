"""A folder of dated snapshots (`<YYYY-MM-DD>.parquet`): list, choose, find the previous one, read.

Feature snapshots (`data/features/customer/`) and tier snapshots (`data/tiers/<policy>/`) are both
one Parquet file per date, and every job asks the same questions of them: which dates exist, is
there one for this date (else: the latest), which one came before. One class answers for both, with
errors that say what to run to make the missing snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from features.errors import InputError


@dataclass(frozen=True)
class DatedSnapshots:
    """The snapshots in `folder`.

    Attributes:
        folder: Where the `<date>.parquet` files are.
        what: What one snapshot is, for messages ("feature snapshot", "lifecycle tier snapshot").
        make: The command that writes one, for messages (`--as-of DATE` is appended when a date is missing).
    """

    folder: Path
    what: str = "snapshot"
    make: str = "tierwise features build"

    def dates(self) -> list[date]:
        """Dates with a snapshot file, oldest first."""
        if not self.folder.is_dir():
            return []
        return sorted(
            date.fromisoformat(p.name.removesuffix(".parquet")) for p in self.folder.glob("*.parquet")
        )

    def path(self, day: date) -> Path:
        return self.folder / f"{day.isoformat()}.parquet"

    def choose(self, as_of: date | None = None) -> date:
        """`as_of` if a snapshot exists for it, else (when None) the latest.

        Raises:
            InputError: there is none, or none for `as_of`; the message says what to run.
        """
        available = self.dates()
        if not available:
            raise InputError(f"no {self.what}s: run `{self.make}` first")
        chosen = as_of or available[-1]
        if chosen not in available:
            raise InputError(
                f"no {self.what} for {chosen} (snapshots: {available[0]} … {available[-1]}): "
                f"run `{self.make} --as-of {chosen}`"
            )
        return chosen

    def previous(self, as_of: date) -> date | None:
        """The latest date strictly before `as_of` with a snapshot, or None."""
        earlier = [day for day in self.dates() if day < as_of]
        return earlier[-1] if earlier else None

    def read(self, day: date, columns: list[str] | None = None) -> pd.DataFrame:
        """The snapshot of `day`; only `columns` (those it has) if given."""
        path = self.path(day)
        if columns is not None:
            present = set(pq.read_schema(path).names)
            columns = [column for column in columns if column in present]
        return pd.read_parquet(path, columns=columns)
