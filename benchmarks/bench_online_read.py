"""Online feature reads: our `OnlineFeatureReader` against Feast's public read APIs, on SQLite and Redis.

    PYTHONPATH=. .venv/bin/python -m benchmarks.bench_online_read [--home DIR] [--work DIR]
        [--calls-1 3000] [--calls-100 500] [--warmup 20]

Without `--home` the script builds a small home from Complete Journey with the project's CLI
(`python -m pipelines`: data import, features build --as-of 2018-01-02, features materialize): 2,469
customers, 56 features in six views. It starts Debian's `redis-server` on a free port (no persistence)
and loads the same snapshot into it with `features materialize` under `TIERWISE_ONLINE_STORE=redis`,
then restores the home's `feature_store.yaml` and stops Redis at the end.

For each store it times, in process, reading all 56 catalog features of 1 and of 100 customers per
call (ids rotated over all customers, every candidate at its own offset; the candidates interleaved
round-robin in one loop, so machine noise hits all of them alike):

    a   reference: `OnlineFeatureReader(store, names).read(ids)` (`features.online_reader`)
    b   `get_online_features(features=<churn service>, entity_rows=[...]).to_dict()`
    b0  the same without `.to_dict()` (where the time goes: the read or the conversion)
    c   the same with a service declared `precompute_online=True` over the six views, filled by
        `FeatureStore.precompute_feature_service` (one serialized vector per customer)
    cf  c with `full_feature_names=True` (`precompute_feature_service` stores the names as
        `view__feature`; Feast 0.67 compares them with the requested names, so c's short names fail)
    d   `get_online_features` with a list of `"view:feature"` references instead of a service
    e   `get_online_features_async` with the service (on one event loop kept for the whole run)
    ecf `get_online_features_async` with the precomputed service and full names

Not timed here: Feast's Redis `client: glide` (optional package `valkey-glide-sync`). Alternating it
with redis-py calls in one process costs ~5 ms at every switch of client, so it cannot share the
interleaved loop; timed alone it read 1 customer no faster than b.

A candidate whose first call fails is reported as unavailable with its error (and the warning Feast
logged, if any), not timed. It prints p50/p99 in ms and their ratios to the reference, the time
`precompute_feature_service` takes on each store, and correctness checks: the values of 20 customers
against the reference, and what each path returns for an unknown customer id (alone and beside a
known one). No timed assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from features.catalog import FEATURES, VIEWS, view_features
from features.feature_repo import JOIN_KEY, view_name
from features.settings import ONLINE_STORE_ENV, REDIS_ENV, Settings
from tests.service_process import RedisServer

PROJECT_DIR = Path(__file__).resolve().parents[1]
AS_OF = "2018-01-02"
SERVICE = "churn"  # every model's service reads all six views
PRECOMPUTED = "bench_online_read_precomputed"
UNKNOWN = "no-such-customer"


# ---------------------------------------------------------------- the home and Redis


def cli(home: Path, *args: str, env: dict[str, str] | None = None) -> None:
    """`python -m pipelines --home HOME ARGS` with this checkout first on the path."""
    environment = {**os.environ, **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(PROJECT_DIR), os.environ.get("PYTHONPATH")])
    )
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pipelines", "--home", str(home), *args], env=environment, check=True
    )
    print(f"  ({' '.join(args)}: {time.perf_counter() - started:.1f} s)", flush=True)


def build_home(home: Path) -> None:
    cli(home, "data", "import", "completejourney")
    cli(home, "features", "build", "--as-of", AS_OF)
    cli(home, "features", "materialize")


# ---------------------------------------------------------------- the candidates


class FeastLog(logging.Handler):
    """Keeps Feast's warnings instead of printing them: a failed precomputed read logs one (with
    all 56 names, twice) on every call; `said` gives the first since the last `clear`."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def clear(self) -> None:
        self.messages.clear()

    def said(self) -> str:
        return f" [Feast logged: {self.messages[0][:100]}]" if self.messages else ""


FEAST_LOG = FeastLog()


@dataclass
class Candidate:
    label: str
    read: Callable[[Sequence[str]], object]
    unavailable: str | None = None  # the first call's error, when it failed


def candidates(store, customer: str, loop: asyncio.AbstractEventLoop) -> list[Candidate]:
    """The read paths of one store, each tried once on `customer` (a failing one is marked unavailable)."""
    from features.online_reader import OnlineFeatureReader

    names = [f.name for f in FEATURES]
    reader = OnlineFeatureReader(store, names)
    service = store.get_feature_service(SERVICE)
    precomputed = store.get_feature_service(PRECOMPUTED)
    refs = [f"{view_name(v)}:{f.name}" for v in VIEWS for f in view_features(v)]

    def rows(ids: Sequence[str]) -> list[dict]:
        return [{JOIN_KEY: c} for c in ids]

    def sync(features, convert: bool = True, full: bool = False):
        def read(ids):
            response = store.get_online_features(
                features=features, entity_rows=rows(ids), full_feature_names=full
            )
            return response.to_dict() if convert else response

        return read

    def asynchronous(features, full: bool = False):
        return lambda ids: loop.run_until_complete(
            store.get_online_features_async(features=features, entity_rows=rows(ids), full_feature_names=full)
        ).to_dict()

    found = [
        Candidate("a   reference OnlineFeatureReader.read", reader.read),
        Candidate(f"b   service {SERVICE!r} .to_dict()", sync(service)),
        Candidate(f"b0  service {SERVICE!r}, no .to_dict()", sync(service, convert=False)),
        Candidate("c   precompute_online service", sync(precomputed)),
        Candidate("cf  precompute_online, full_feature_names", sync(precomputed, full=True)),
        Candidate("d   56 feature refs .to_dict()", sync(refs)),
        Candidate(f"e   async, service {SERVICE!r}", asynchronous(service)),
        Candidate("ecf async, precompute_online, full names", asynchronous(precomputed, full=True)),
    ]
    for candidate in found:
        FEAST_LOG.clear()
        try:
            candidate.read([customer])
        except Exception as exc:  # any failure makes the path unavailable here
            candidate.unavailable = (
                f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}{FEAST_LOG.said()}"
            )
    return found


def reader_growth(store, customer: str, reads: int = 100) -> str:
    """Whether a read gets slower the more reads a reader has made (Feast's Redis store once grew the
    name lists the reader passed it, one name per view and read)."""
    from features.online_reader import OnlineFeatureReader

    reader = OnlineFeatureReader(store, [f.name for f in FEATURES])
    started = time.perf_counter()
    for _ in range(reads):
        reader.read([customer])
    first = (time.perf_counter() - started) * 1000 / reads
    started = time.perf_counter()
    for _ in range(reads):
        reader.read([customer])
    second = (time.perf_counter() - started) * 1000 / reads
    return (
        f"OnlineFeatureReader over {2 * reads} reads of 1 id: mean ms per read {first:.2f} "
        f"(reads 1-{reads}) -> {second:.2f} (reads {reads + 1}-{2 * reads})"
    )


def register_precomputed(store) -> None:
    """A service over all six views with `precompute_online=True`, registered beside the others."""
    from feast import FeatureService

    views = [store.get_feature_view(view_name(v)) for v in VIEWS]
    store.apply([FeatureService(name=PRECOMPUTED, features=views, precompute_online=True)])


# ---------------------------------------------------------------- latency


@dataclass(frozen=True)
class Latency:
    p50: float
    p99: float
    calls: int


def latency(
    cands: list[Candidate], customers: list[str], size: int, calls: int, warmup: int
) -> dict[str, Latency]:
    """p50/p99 ms per candidate over `calls` calls of `size` ids each, candidates interleaved.

    Candidate k reads the ids from its own offset (k/K of the way round the customer list) and moves
    on by `size` per call, so no id repeats within a candidate until the list wraps; the order of the
    candidates within a round rotates, so none always runs first or right after another.
    """
    live = [c for c in cands if c.unavailable is None]
    n = len(customers)
    times: dict[str, list[float]] = {c.label: [] for c in live}
    for i in range(warmup + calls):
        start = i % len(live)
        for k in [*range(start, len(live)), *range(start)]:
            begin = (k * n // len(live) + i * size) % n
            ids = [customers[(begin + j) % n] for j in range(size)]
            started = time.perf_counter()
            live[k].read(ids)
            elapsed = (time.perf_counter() - started) * 1000
            if i >= warmup:
                times[live[k].label].append(elapsed)
    result = {}
    for label, values in times.items():
        p50, p99 = np.percentile(values, [50, 99])
        result[label] = Latency(float(p50), float(p99), len(values))
    return result


# ---------------------------------------------------------------- correctness


def values_of(candidate: Candidate, ids: list[str]) -> dict[str, list]:
    """Feature name (without any `view__` prefix) -> values in request order, from any candidate."""
    result = candidate.read(ids)
    if hasattr(result, "columns") and hasattr(result, "found"):  # OnlineRows
        return result.columns
    if not isinstance(result, dict):  # an OnlineResponse not converted
        result = result.to_dict()
    return {k.split("__", 1)[-1]: v for k, v in result.items() if k != JOIN_KEY}


def same(x, y) -> bool:
    if x is None or y is None:
        return x is None and y is None
    if isinstance(x, float) or isinstance(y, float):
        return float(x) == float(y) or (math.isnan(float(x)) and math.isnan(float(y)))
    return x == y


def compare(cands: list[Candidate], ids: list[str]) -> list[str]:
    """One line per candidate: how many of the 20 x 56 values differ from the reference's."""
    reference, *others = [c for c in cands if c.unavailable is None]
    expected = values_of(reference, ids)
    lines = []
    for candidate in others:
        got = values_of(candidate, ids)
        missing = sorted(set(expected) - set(got))
        diffs = [
            (name, ids[i], expected[name][i], got[name][i])
            for name in expected
            if name in got
            for i in range(len(ids))
            if not same(expected[name][i], got[name][i])
        ]
        total = len(ids) * len(expected)
        text = f"{candidate.label:<42} {total - len(diffs) - len(missing) * len(ids):>5}/{total} values equal"
        if missing:
            text += f"; features missing: {', '.join(missing[:5])}"
        if diffs:
            text += f"; first differences: {diffs[:3]}"
        lines.append(text)
    return lines


def unknown_outcome(candidate: Candidate, ids: list[str]) -> str:
    """What a path returns for `ids` containing UNKNOWN: the error, or the unknown row's values."""
    FEAST_LOG.clear()
    try:
        result = candidate.read(ids)
    except Exception as exc:  # reporting what happens is the point
        return f"raises {type(exc).__name__}: {str(exc).splitlines()[0][:70]}...{FEAST_LOG.said()}"
    at = ids.index(UNKNOWN)
    if hasattr(result, "found"):  # OnlineRows
        values = [column[at] for column in result.columns.values()]
        nulls = sum(v is None for v in values)
        return f"found={bool(result.found[at])}, as_of={result.as_of[at]}, {nulls}/{len(values)} values None"
    if not isinstance(result, dict):
        result = result.to_dict()
    values = [column[at] for name, column in result.items() if name != JOIN_KEY]
    nulls = sum(v is None for v in values)
    return f"no error, {nulls}/{len(values)} values None"


# ---------------------------------------------------------------- one store


def bench_store(
    settings: Settings, customers: list[str], args: argparse.Namespace
) -> tuple[dict[int, dict[str, Latency]], list[Candidate], list[str]]:
    from features.feature_store import open_store

    store = open_store(settings)
    if PRECOMPUTED not in {s.name for s in store.list_feature_services()}:
        register_precomputed(store)
    started = time.perf_counter()
    written = store.precompute_feature_service(PRECOMPUTED)
    populate = time.perf_counter() - started
    notes = [f"precompute_feature_service({PRECOMPUTED!r}): {written:,} vectors written in {populate:.2f} s"]
    if not written:
        notes[-1] += " (Feast 0.67 finds the entities by scanning Redis keys; other stores are skipped)"

    loop = asyncio.new_event_loop()
    try:
        cands = candidates(store, customers[0], loop)
        notes.append(reader_growth(store, customers[2]))
        for c in cands:
            if c.unavailable:
                notes.append(f"{c.label}: unavailable, {c.unavailable}")
        sample = customers[:: max(1, len(customers) // 20)][:20]
        notes.append(f"values of {len(sample)} customers x {len(FEATURES)} features against the reference:")
        notes += ["  " + line for line in compare(cands, sample)]
        notes.append(f"unknown id {UNKNOWN!r} alone / beside a known id:")
        for c in cands:
            if c.unavailable is None:
                alone = unknown_outcome(c, [UNKNOWN])
                mixed = unknown_outcome(c, [customers[1], UNKNOWN])
                notes.append(f"  {c.label:<42} alone: {alone}")
                notes.append(f"  {'':<42} mixed: {mixed}")
        figures = {
            1: latency(cands, customers, 1, args.calls_1, args.warmup),
            100: latency(cands, customers, 100, args.calls_100, max(1, args.warmup // 4)),
        }
    finally:
        loop.close()
    return figures, cands, notes


def print_table(title: str, figures: dict[int, dict[str, Latency]], cands: list[Candidate]) -> None:
    reference = cands[0].label
    print(f"\n{title}")
    header = f"{'path':<42}"
    for size in figures:
        header += f" | {size:>3} id(s): p50 ms  p99 ms  p50 x  p99 x"
    print(header)
    for c in cands:
        line = f"{c.label:<42}"
        for by_label in figures.values():
            if c.unavailable:
                line += f" | {'unavailable':>37}"
                continue
            m, ref = by_label[c.label], by_label[reference]
            line += f" | {m.p50:17.2f} {m.p99:7.2f} {m.p50 / ref.p50:6.1f} {m.p99 / ref.p99:6.1f}"
        print(line)
    calls = {size: next(iter(by_label.values())).calls for size, by_label in figures.items()}
    print(f"{'':<42} calls per path: {', '.join(f'{n} of {s} id(s)' for s, n in calls.items())}")


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--home", type=Path, help="an existing home with Complete Journey materialized (SQLite)"
    )
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()), help="where to build a home"
    )
    parser.add_argument("--calls-1", type=int, default=3000, help="timed calls of 1 id per path")
    parser.add_argument("--calls-100", type=int, default=500, help="timed calls of 100 ids per path")
    parser.add_argument("--warmup", type=int, default=20, help="untimed rounds first (a quarter for 100 ids)")
    parser.add_argument("--redis-server", default="/usr/bin/redis-server")
    args = parser.parse_args()
    feast_logger = logging.getLogger("feast")
    feast_logger.addHandler(FEAST_LOG)
    feast_logger.propagate = False
    import pandas as pd

    home = args.home
    if home is None:
        args.work.mkdir(parents=True, exist_ok=True)
        home = Path(tempfile.mkdtemp(prefix="tierwise-bench-online-", dir=args.work))
        print(f"building home {home}", flush=True)
        build_home(home)
    sqlite = Settings.resolve(home, "sqlite")
    snapshot = sqlite.feature_snapshots.path(sqlite.feature_snapshots.choose())
    customers = pd.read_parquet(snapshot, columns=[JOIN_KEY])[JOIN_KEY].astype(str).tolist()
    print(
        f"home {home}: {len(customers):,} customers, {len(FEATURES)} features in {len(VIEWS)} views; "
        f"cpus {os.cpu_count()}; python {sys.version.split()[0]}",
        flush=True,
    )

    yaml_path = sqlite.feature_repo_dir / "feature_store.yaml"
    original_yaml = yaml_path.read_bytes()
    redis_dir = Path(tempfile.mkdtemp(prefix="bench-online-redis-"))
    server = RedisServer(args.redis_server, redis_dir)
    results = []
    try:
        redis_env = {ONLINE_STORE_ENV: "redis", REDIS_ENV: server.address}
        print(f"redis-server on {server.address}; loading it:", flush=True)
        cli(home, "features", "materialize", env=redis_env)
        redis = Settings(home=sqlite.home, online_store="redis", redis=server.address)
        for settings in (sqlite, redis):
            results.append((settings.online_store, *bench_store(settings, customers, args)))
    finally:
        server.stop()
        shutil.rmtree(redis_dir, ignore_errors=True)
        from features.feature_store import open_store

        store = open_store(sqlite)  # drop the benchmark's service; the home keeps only its own
        if PRECOMPUTED in {s.name for s in store.list_feature_services()}:
            store.delete_feature_service(PRECOMPUTED)
        yaml_path.write_bytes(original_yaml)

    for name, figures, cands, notes in results:
        print_table(
            f"== {name}: all {len(FEATURES)} features; ratios to the reference (a) in the same loop",
            figures,
            cands,
        )
        for note in notes:
            print(note)


if __name__ == "__main__":
    main()
