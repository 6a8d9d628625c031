"""Where an order event's time goes, and the floor under it: DuckDB plans every query again.

    .venv/bin/python -m benchmarks.bench_event_floor [--home DIR] [--events 40] [--repeat 20]

In-process on a copy of a served home (what `tierwise run` leaves), no HTTP:

1. one event at a time, each for another customer, through `serving.events.OrderEvents.submit`: the
   p50 of the whole and of each step (the import's checks, the customer's known orders, reading
   their history, typing the event, the derived tables and the feature query, Feast's push, the new
   answer);
2. the batch feature query for one customer, over the temporary tables an event leaves: the plain
   query, and `EXECUTE` of the same statement `PREPARE`d once (nothing changes in between), with
   DuckDB's profiler split of one `EXECUTE`: binding, planning and optimizing against the CPU time of
   its operators. The reference, in the same run, is a trivial query of 40 group-bys over a
   100-row table, prepared the same way: if `EXECUTE` kept its plan it would cost the operators'
   time alone.

Printed: milliseconds (p50 of `--repeat`) and the ratios that make the argument: the operators'
share of the feature query, and `EXECUTE` over the plain query.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb

from benchmarks.bench_events import served_sample
from features.settings import Settings


@contextlib.contextmanager
def timing(stages: dict[str, list[float]], targets: list[tuple[object, str, str]]) -> Iterator[None]:
    """Each `(owner, attribute, label)` wrapped so its wall times are appended to `stages[label]`."""
    originals = []
    for owner, name, label in targets:
        original = owner.__dict__[name]  # type: ignore[attr-defined]
        function = original.__func__ if isinstance(original, staticmethod) else original

        @functools.wraps(function)
        def timed(*args, _function=function, _label=label, **kwargs):  # type: ignore[no-untyped-def]
            started = time.perf_counter()
            try:
                return _function(*args, **kwargs)
            finally:
                stages[_label].append((time.perf_counter() - started) * 1000)

        setattr(owner, name, staticmethod(timed) if isinstance(original, staticmethod) else timed)
        originals.append((owner, name, original))
    try:
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


def median_ms(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def profiled(con: duckdb.DuckDBPyConnection, sql: str, folder: Path, repeat: int) -> dict[str, float]:
    """DuckDB's profiler split of `sql` in ms, each part's median over `repeat` runs."""
    output = folder / "profile.json"
    con.execute("SET enable_profiling = 'json'")
    con.execute(f"SET profiling_output = '{output}'")
    con.execute("SET profiling_mode = 'detailed'")
    parts: dict[str, list[float]] = defaultdict(list)
    for _ in range(repeat):
        con.execute(sql).fetchall()
        profile = json.loads(output.read_text())
        parts["binding"].append(profile["planner"]["binding_time"] * 1000)
        parts["planning"].append(profile["planner"]["total_time"] * 1000)
        parts["optimizing"].append(profile["optimizer"]["total_time"] * 1000)
        parts["operators"].append(profile["query"]["cpu_time"] * 1000)
    con.execute("PRAGMA disable_profiling")
    return {part: statistics.median(values) for part, values in parts.items()}


def events_in_process(settings: Settings, count: int) -> None:
    import features.event_features as event_features
    import serving.events as events_module
    from features.data.event_log import EventLog
    from serving.predictor import Predictor

    predictor = Predictor(settings)
    handler = events_module.OrderEvents(settings, lambda: predictor)
    day, customers, product = served_sample(settings)
    stages: dict[str, list[float]] = defaultdict(list)
    steps = [
        (events_module, "check_requests", "the import's checks"),
        (event_features.EventFeatures, "known_orders", "known orders of the customer"),
        (EventLog, "append", "log (durable commit)"),
        (event_features.EventFeatures, "_read_history", "reading the customer's history"),
        (event_features.EventFeatures, "_add_events", "typing the event (import SQL)"),
        (event_features.EventFeatures, "compute", "features (history, typing, derived, query)"),
        (type(handler.store), "push", "Feast push"),
        (events_module.OrderEvents, "_tier_changes", "new answer, stored"),
    ]
    total = []
    with timing(stages, steps):
        for i in range(count):
            body = {
                "order_id": f"floor-{time.time_ns()}-{i}",
                "customer_id": customers[(i * 37) % len(customers)],
                "ordered_at": f"{day}T10:00:00",
                "lines": [{"product_id": product, "quantity": 1, "amount": 2.49}],
            }
            started = time.perf_counter()
            handler.submit([body], source="bench")
            total.append((time.perf_counter() - started) * 1000)
    skip = min(5, count // 3)  # the first events warm caches (Parquet footers, the registry)
    print(f"one event in-process, p50 of {count - skip}: {statistics.median(total[skip:]):.1f} ms")
    for _, _, label in steps:
        print(f"  {label:<44} {statistics.median(stages[label][skip:]):7.1f} ms")
    handler.close()


def feature_query(settings: Settings, repeat: int, folder: Path) -> None:
    from features.customer_features import feature_sql
    from features.data.duck import joins_as_written
    from features.event_features import EventFeatures

    features = EventFeatures(settings)
    day, customers, _ = served_sample(settings)
    features.compute(customers[:1], [], day)  # leaves the customer's temporary tables
    con = features.con
    sql = feature_sql(features._caps)  # type: ignore[arg-type]
    trivial = " UNION ALL ".join(
        f"SELECT k, sum(v) * {i} AS s, avg(v) FILTER (WHERE v > {i}) AS a FROM bench_rows GROUP BY k"
        for i in range(40)
    )
    con.execute("CREATE TEMP TABLE bench_rows AS SELECT range % 7 AS k, range::DOUBLE AS v FROM range(100)")
    print("a query's time, p50 of", repeat, "(ms); the profiler's split of one EXECUTE")
    with joins_as_written(con):
        for label, text in (("feature query, one customer", sql), ("reference: 40 group-bys", trivial)):
            con.execute(f"PREPARE bench_query AS {text}")
            plain = median_ms(lambda text=text: con.execute(text).fetchall(), repeat)
            prepared = median_ms(lambda: con.execute("EXECUTE bench_query").fetchall(), repeat)
            split = profiled(con, "EXECUTE bench_query", folder, repeat)
            con.execute("DEALLOCATE bench_query")
            print(
                f"  {label:<28} plain {plain:6.1f}  EXECUTE {prepared:6.1f} ({prepared / plain:.2f}x)  "
                f"binding {split['binding']:5.1f}  planning {split['planning']:5.1f}  "
                f"optimizing {split['optimizing']:5.1f}  operators {split['operators']:5.1f} "
                f"({split['operators'] / prepared:.0%} of EXECUTE)"
            )
    features.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, default=Path("/work/bench/cjhome"))
    parser.add_argument("--events", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-event-floor-"))
    try:
        for part in ("data", "mlruns"):
            shutil.copytree(args.home / part, scratch / "home" / part, symlinks=True)
        settings = Settings.resolve(scratch / "home")
        print(f"home {args.home}, DuckDB {duckdb.__version__}")
        events_in_process(settings, args.events)
        feature_query(settings, args.repeat, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
