"""Steps the feature benchmark runs in child processes (see `benchmarks.measure`)."""

from __future__ import annotations

import shutil
import time
from datetime import date, timedelta

import numpy as np
import pandas as pd

from features.data.store import DataStore
from features.live_data import open_live_data
from features.settings import Settings
from features.snapshots import data_period, parse_cutoff_range


def _con(home: str):
    settings = Settings.resolve(home)
    con = open_live_data(settings)
    return con


def import_cj(home: str) -> int:
    from pipelines.import_data import import_completejourney

    return import_completejourney(Settings.resolve(home)).rows_read


def synth(home: str, customers: int, seed: int) -> dict:
    from features.data.synth import generate

    report = generate(DataStore(Settings.resolve(home).data_dir), customers, seed)
    return {"orders": report.orders, "lines": report.order_lines}


def derive(home: str) -> int:
    """Rewrite the derived tables of the live data (the part of an import that summarizes for features)."""
    from pipelines.import_data import refresh_derived_tables

    refresh_derived_tables(Settings.resolve(home))
    return int(_con(home).execute("SELECT count(*) FROM order_facts").fetchall()[0][0])


def last_cutoff(home: str) -> str:
    period = data_period(_con(home))
    return (period.last_order.date() + timedelta(days=1)).isoformat()


def build(home: str, cutoff_spec: str) -> int:
    """Our full feature build (`tierwise features build`): all catalog features at the cutoffs of FIRST:LAST:STEP."""
    from pipelines.build_features import build as build_features

    return sum(build_features(Settings.resolve(home), parse_cutoff_range(cutoff_spec)).values())


def minimal_query(home: str, cutoff: str, table: str) -> int:
    """Reference: 30/90/365-day order counts and spend per customer at one cutoff, hand-written."""
    con = _con(home)
    windows = ", ".join(
        f"count(DISTINCT order_id) FILTER (WHERE ordered_at >= TIMESTAMPTZ '{cutoff}' - INTERVAL {d} DAY) AS orders_{d}d, "
        f"sum(amount) FILTER (WHERE ordered_at >= TIMESTAMPTZ '{cutoff}' - INTERVAL {d} DAY) AS spend_{d}d"
        for d in (30, 90, 365)
    )
    con.execute(
        f"CREATE TABLE ref AS SELECT customer_id, {windows} FROM {table} "
        f"WHERE ordered_at < TIMESTAMPTZ '{cutoff}' GROUP BY customer_id"
    )
    return con.execute("SELECT count(*) FROM ref").fetchall()[0][0]


def subset_home(source_home: str, target_home: str, customers: int) -> str:
    """A home holding only the latest snapshot's first `customers` rows (for the materialize comparison)."""
    source, target = Settings.resolve(source_home), Settings.resolve(target_home)
    latest = sorted(source.snapshots_dir.glob("*.parquet"))[-1]
    target.snapshots_dir.mkdir(parents=True, exist_ok=True)
    frame = pd.read_parquet(latest).iloc[:customers]
    frame.to_parquet(target.snapshots_dir / latest.name, index=False)
    return latest.name.removesuffix(".parquet")


def chunked_materialize(home: str) -> int:
    from features import feature_store

    settings = Settings.resolve(home)
    feature_store.apply(settings)
    return feature_store.materialize(settings)[1]


def plain_feast_materialize(home: str, day: str) -> int:
    """Feast's own `materialize` over the snapshot's timestamp (what we replaced)."""
    from features import feature_store

    settings = Settings.resolve(home)
    store = feature_store.apply(settings)
    start = pd.Timestamp(day, tz="UTC").to_pydatetime()
    store.materialize(start_date=start - timedelta(seconds=1), end_date=start + timedelta(seconds=1))
    return len(pd.read_parquet(settings.snapshots_dir / f"{day}.parquet", columns=["customer_id"]))


def reset_online_store(home: str) -> None:
    repo = Settings.resolve(home).feature_repo_dir
    shutil.rmtree(repo, ignore_errors=True)


def online_latency(home: str, batch: int, calls: int) -> dict:
    """p50/p99 of `get_online_features` for `batch` random known customers per call (SQLite)."""
    from features import feature_store

    settings = Settings.resolve(home)
    store = feature_store.open_store(settings)
    service = feature_store.feature_service(store, "churn")
    latest = sorted(settings.snapshots_dir.glob("*.parquet"))[-1]
    ids = pd.read_parquet(latest, columns=["customer_id"])["customer_id"].to_numpy()
    rng = np.random.default_rng(0)
    store.get_online_features(features=service, entity_rows=[{"customer_id": ids[0]}]).to_dict()  # first call
    timings = []
    for _ in range(calls):
        chosen = rng.choice(ids, size=batch, replace=False)
        start = time.perf_counter()
        store.get_online_features(
            features=service, entity_rows=[{"customer_id": c} for c in chosen]
        ).to_dict()
        timings.append((time.perf_counter() - start) * 1000)
    return {"p50_ms": float(np.percentile(timings, 50)), "p99_ms": float(np.percentile(timings, 99))}


def as_date(text: str) -> date:
    return date.fromisoformat(text)
