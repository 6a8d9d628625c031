"""Import jobs: Complete Journey or a shop's own file into the canonical tables of a data home."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from features.data.completejourney import stage_completejourney
from features.data.derived import write_derived_tables
from features.data.import_engine import ImportEngine
from features.data.importer import DEFAULT_MAX_QUARANTINE_SHARE, ImportReport, StepCallback, import_orders
from features.data.sources import stage_order_file
from features.data.store import DataStore
from features.live_data import connect_in_home
from features.settings import Settings


def summarizer(settings: Settings) -> Callable[[Path], None] | None:
    """What writes an import's derived tables on the engine of `settings` (None: DuckDB, the importer's own)."""
    if settings.engine != "spark":
        return None
    from features.spark_derived import write_derived_tables
    from features.spark_session import spark_session

    return lambda version: write_derived_tables(spark_session(settings), version)


@contextmanager
def import_engine(settings: Settings, con: duckdb.DuckDBPyConnection) -> Iterator[ImportEngine | None]:
    """What runs an import's work over every row on the engine of `settings` (None: DuckDB on `con`),
    with a scratch folder in the home for what it hands between engines."""
    if settings.engine != "spark":
        yield None
        return
    from features.spark_import import SparkImport
    from features.spark_session import spark_session

    settings.spark_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="import-", dir=settings.spark_dir) as scratch:
        engine = SparkImport(spark_session(settings), con, Path(scratch))
        try:
            yield engine
        finally:
            engine.release()


def import_completejourney(
    settings: Settings, data_dir: Path | None = None, on_step: StepCallback | None = None
) -> ImportReport:
    """Import the Complete Journey package data (or a folder of its files, such as the test slice)."""
    fold_events(settings)
    con = connect_in_home(settings)
    staged, reference = stage_completejourney(con, data_dir)
    with import_engine(settings, con) as engine:
        return import_orders(
            con,
            DataStore(settings.data_dir),
            staged,
            now=datetime.now(UTC),
            reference=reference,
            on_step=on_step,
            summarize=summarizer(settings),
            engine=engine,
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
    fold_events(settings)
    con = connect_in_home(settings)
    with (
        tempfile.TemporaryDirectory(prefix="tierwise-import-") as scratch,
        import_engine(settings, con) as engine,
    ):
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
            summarize=summarizer(settings),
            engine=engine,
        )


def fold_events(settings: Settings) -> list[ImportReport]:
    """Write the order events not yet imported into the canonical tables, as an import of their own.

    Every batch import starts with it, so the nightly extract's copy of an order that arrived as an
    event is already present (and adds nothing) and a changed copy is quarantined, as for any order
    imported twice. The events pass the import's checks again (they passed them when received); one
    whose order was meanwhile imported with other content lands in the store's quarantine. Returns
    one report per import (events with lines and without are two), none when nothing is pending.
    """
    import hashlib

    from features.data.event_log import EventLog
    from features.data.order_events import STAGED_COLUMNS, staged_rows
    from features.data.sources import StagedSource

    if not settings.events_path.exists():
        return []
    log = EventLog(settings.events_path)
    reports = []
    try:
        events = log.unfolded()
        for with_lines in (False, True):
            group = [e for e in events if ("lines" in e.body) == with_lines]
            if not group:
                continue
            con = connect_in_home(settings)
            con.register("order_events", staged_rows([(e.seq, e.body) for e in group], with_lines))
            sent = {name for e in group for part in (e.body.get("lines") or [e.body]) for name in part}
            sent |= {name for e in group for name in e.body if name != "lines"}
            staged = StagedSource(
                view="order_events",
                label="order events",
                is_csv=False,
                sha256=hashlib.sha256(",".join(str(e.seq) for e in group).encode()).hexdigest(),
                fields=frozenset(name for name in STAGED_COLUMNS[3:] if name in sent),
                original_columns=("event", "line"),
                has_lines=with_lines,
            )
            with import_engine(settings, con) as engine:
                report = import_orders(
                    con,
                    DataStore(settings.data_dir),
                    staged,
                    now=datetime.now(UTC),
                    max_quarantine_share=1.0,
                    summarize=summarizer(settings),
                    engine=engine,
                )
            log.mark_folded([e.seq for e in group], report.import_id)
            reports.append(report)
            con.close()
    finally:
        log.close()
    return reports


def refresh_derived_tables(settings: Settings) -> None:
    """Rewrite the derived tables of the live data in a new version (for data imported before they existed).

    An import or `data synth` writes them itself; this only helps a home written by an older Tierwise,
    whose feature builds otherwise compute them from the order lines every time.
    """
    summarize = summarizer(settings)
    with DataStore(settings.data_dir).transaction() as draft:
        if summarize is None:
            write_derived_tables(connect_in_home(settings), draft)
        else:
            summarize(draft)
