"""Import jobs: Complete Journey or a shop's own file into the canonical tables of a data home."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from features.data.completejourney import stage_completejourney
from features.data.derived import write_derived_tables
from features.data.importer import DEFAULT_MAX_QUARANTINE_SHARE, ImportReport, StepCallback, import_orders
from features.data.sources import stage_order_file
from features.data.store import DataStore
from features.live_data import connect_in_home
from features.settings import Settings


def import_completejourney(
    settings: Settings, data_dir: Path | None = None, on_step: StepCallback | None = None
) -> ImportReport:
    """Import the Complete Journey package data (or a folder of its files, such as the test slice)."""
    con = connect_in_home(settings)
    staged, reference = stage_completejourney(con, data_dir)
    return import_orders(
        con, DataStore(settings.data_dir), staged, now=datetime.now(UTC), reference=reference, on_step=on_step
    )


def import_file(
    settings: Settings,
    path: Path,
    map_options: list[str],
    *,
    timezone: str | None = None,
    timestamp_format: str | None = None,
    on_step: StepCallback | None = None,
    encoding: str = "utf-8",
    max_quarantine_share: float = DEFAULT_MAX_QUARANTINE_SHARE,
) -> ImportReport:
    """Import a shop's CSV or Parquet file of orders or order lines, with its own column names."""
    import tempfile

    con = connect_in_home(settings)
    with tempfile.TemporaryDirectory(prefix="tierwise-import-") as scratch:
        staged = stage_order_file(con, path, map_options, encoding=encoding, scratch=Path(scratch))
        return import_orders(
            con,
            DataStore(settings.data_dir),
            staged,
            now=datetime.now(UTC),
            timezone=timezone,
            timestamp_format=timestamp_format,
            on_step=on_step,
            max_quarantine_share=max_quarantine_share,
        )


def refresh_derived_tables(settings: Settings) -> None:
    """Rewrite the derived tables of the live data in a new version (for data imported before they existed).

    An import or `data synth` writes them itself; this only helps a home written by an older Tierwise,
    whose feature builds otherwise compute them from the order lines every time.
    """
    con = connect_in_home(settings)
    with DataStore(settings.data_dir).transaction() as draft:
        write_derived_tables(con, draft)
