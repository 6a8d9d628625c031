"""Steps the scale benchmark runs in child processes (see `benchmarks.measure`), on either engine."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from features.settings import Settings
from features.snapshots import parse_cutoff_range


def _settings(home: str, engine: str) -> Settings:
    return dataclasses.replace(Settings.resolve(home), engine=engine)


def synth(home: str, engine: str, customers: int, seed: int) -> dict:
    """`tierwise data synth`: generate the shop, then its derived tables on `engine`."""
    from features.data.store import DataStore
    from features.data.synth import generate
    from pipelines.import_data import summarizer

    settings = _settings(home, engine)
    report = generate(DataStore(settings.data_dir), customers, seed, summarize=summarizer(settings))
    return {"orders": report.orders, "lines": report.order_lines}


def derive(home: str, engine: str) -> int:
    """The derived tables of the live data, rewritten on `engine` (the summarizing part of an import)."""
    from pipelines.import_data import refresh_derived_tables

    refresh_derived_tables(_settings(home, engine))
    return 0


def last_cutoff(home: str) -> str:
    from features.live_data import open_live_data
    from features.snapshots import data_period

    period = data_period(open_live_data(Settings.resolve(home)))
    return (period.last_order.date() + timedelta(days=1)).isoformat()


def build(home: str, engine: str, cutoff_spec: str) -> int:
    """`tierwise features build` at the cutoffs of FIRST:LAST:STEP on `engine`; returns customer rows."""
    from pipelines.build_features import build as build_features

    return sum(build_features(_settings(home, engine), parse_cutoff_range(cutoff_spec)).values())
