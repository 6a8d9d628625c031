"""`tierwise monitor` at a million customers, against Evidently's drift preset on the full frame.

    PYTHONPATH=. .venv/bin/python -m benchmarks.bench_monitor --home /work/bench/monitor1m
        [--customers 1000000] [--repeat 3] [--full-frame-timeout 900] [--profile monitor.prof]

Importing, deriving and training at a million customers take half an hour and 21 GB, too much for
a benchmark of monitoring. The set-up builds a small real home instead and lets its champions carry
the reference; only the monitored snapshot is large. Each step runs when the home lacks its result,
so a second run of the benchmark reuses the home:

1. `data synth --customers 20000 --seed 7`; the three models trained as `train --trials 0 --horizon
   60 --step 14` does it (`train_champions`); the test cutoff, 60 days before the end of the synthetic year, is the last training cutoff and where
   the champions' monitoring references come from (17,516 rows); `score --as-of <test cutoff>` (a
   20k tier snapshot whose horizon has ended: monitoring measures its real quality, as every week);
2. the current snapshot for the day after (D): the test cutoff's feature rows resampled with
   replacement to `--customers` rows with new customer ids, numeric columns times a seeded factor in
   [0.98, 1.02] (not a pile of exact copies), `event_timestamp` D, written as the feature snapshot of
   D; then `score --as-of D` writes the `--customers` tier snapshot. D's horizon is not over, so no
   outcome is computed for it (checked, else the benchmark stops): monitoring at D is feature and
   prediction drift, tier drift, pages, JSON, workspace and MLflow at full size, plus the quality of
   the matured 20k snapshots (counted in the output).

Measured, each in a fresh process (peak RSS of that process):

- `python -m pipelines --home H monitor --as-of D` as a user runs it, `--repeat` times (exit 5, an
  alert, is a normal outcome); median and range; the sizes of the pages and JSON it writes;
- `monitoring.drift.column_drift` of the churn champion's features as monitoring calls it
  (current side sampled to `Thresholds.stat_rows`), loading excluded;
- the same call on the full current frame (no sampling), once, stopped after `--full-frame-timeout`
  seconds or above `--memory-cap` MB: what the sampling saves. When it finishes, the largest gap
  between its per-column distances and the sampled ones is printed too.

Targets (from the issue): monitor under 60 s, peak memory under 4 GiB, each HTML page under 20 MB.
Wall time depends on what else the machine runs; CPU seconds and the load average are printed too.
`--profile FILE` adds one monitor run under cProfile and prints what `pipelines.monitor.monitor`
spends its time on.

Measured on the 2-core machine (load 1.3-2), 1M customers: monitor 23.8 s median (23.6-24.0), 31 s
CPU, peak 2.3 GB; pages 7.0 MB per model, 4.4 MB overview, 3.5 MB tiers; column_drift 8.6 s at
50,000 rows, 122.5 s and 4.4 GB on the full frame (5.1x the whole monitor run), with per-column
distances within 0.01 of the sampled ones and the same verdicts. Most of a run does not grow with
customers: one feature-drift report on the sample, drawn once and copied to each model's page, the
workspace runs, Evidently's quality presets on the matured 20k snapshot, and opening the workspace.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

S = "benchmarks.bench_monitor:"
SMALL_CUSTOMERS = 20_000
SEED = 7
HORIZON, STEP = 60, 14
JITTER = 0.02
#: Printed by the drift step once its inputs are loaded: the full-frame time limit counts from here.
READY = "@@READY@@"
TARGET_SECONDS, TARGET_PEAK_MB, TARGET_PAGE_MB = 60, 4096, 20

#: A child process: import the step, run it, print its result (JSON) after a marker.
_CHILD = """
import json, sys, importlib
module, function = sys.argv[1].split(":")
result = getattr(importlib.import_module(module), function)(*json.loads(sys.argv[2]))
print("\\n@@RESULT@@" + json.dumps(result, default=str), flush=True)
"""


@dataclass(frozen=True)
class Run:
    """One child process: wall time, peak RSS and CPU seconds (from `wait4`), exit code, output."""

    seconds: float
    peak_mb: float
    cpu_seconds: float
    code: int
    stopped: str | None
    output: str

    @property
    def result(self) -> Any:
        _, found, text = self.output.rpartition("@@RESULT@@")
        return json.loads(text) if found else None


def run(
    argv: list[str], timeout: float | None = None, memory_cap_mb: float | None = None, clock_from: str = ""
) -> Run:
    """Run `argv`; stop it `timeout` seconds after it printed `clock_from` (after it started, if
    empty) or when its RSS passes `memory_cap_mb`. Peak RSS and CPU come from `wait4`, killed or not."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        clock, stopped = (None if clock_from else start), None
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.2)
            # pread: the child writes at the offset it shares with `out`, which must not move
            if clock is None and clock_from.encode() in os.pread(out.fileno(), 1 << 20, 0):
                clock = time.perf_counter()
            if timeout is not None and clock is not None and time.perf_counter() - clock > timeout:
                stopped = f"did not finish in {timeout:.0f} s"
            elif memory_cap_mb is not None and _rss_mb(process.pid) > memory_cap_mb:
                stopped = f"stopped above {memory_cap_mb:,.0f} MB"
            if stopped:
                process.kill()
                _, status, usage = os.wait4(process.pid, 0)
                break
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        seconds = time.perf_counter() - start
        out.seek(0)
        output = out.read().decode(errors="replace")
    return Run(
        seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, process.returncode, stopped, output
    )


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            line = next(x for x in status if x.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024
    except (OSError, StopIteration):
        return 0.0


def step(target: str, *args: Any, **limits: Any) -> Run:
    """A function of this module (or another) in a fresh process; fails loudly unless stopped."""
    done = run([sys.executable, "-c", _CHILD, target, json.dumps(list(args), default=str)], **limits)
    if done.code != 0 and not done.stopped:
        raise RuntimeError(f"{target} failed:\n{done.output[-4000:]}")
    return done


def tierwise(home: str, *args: str, ok: tuple[int, ...] = (0,)) -> Run:
    """`python -m pipelines --home HOME ARGS...` as a child process."""
    done = run([sys.executable, "-m", "pipelines", "--home", home, *args])
    if done.code not in ok:
        raise RuntimeError(f"tierwise {' '.join(args)} exited {done.code}:\n{done.output[-4000:]}")
    return done


# Steps run in child processes -------------------------------------------------------------------


def home_state(home: str) -> dict:
    """What the home already has: data, the three champions' test cutoff (None unless all three
    exist), the feature snapshot dates and the tier snapshot rows by date."""
    from features.settings import Settings
    from training import registry

    settings = Settings.resolve(home)
    state = {"data": (settings.data_dir / "tables").exists(), "test_cutoff": None}
    if settings.mlruns_dir.exists():
        registry.configure(settings)
        champions = [registry.champion(name) for name in ("churn", "customer_value", "growth_potential")]
        if all(champions):
            state["test_cutoff"] = champions[0].tags.get("test_cutoff")
    state["features"] = [d.isoformat() for d in settings.feature_snapshots.dates()]
    tiers = settings.tier_snapshots("lifecycle")
    state["tiers"] = {d.isoformat(): _rows(tiers.path(d)) for d in tiers.dates()}
    return state


def _rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def train_champions(home: str) -> dict:
    """`tierwise train --trials 0 --horizon HORIZON --step STEP` of the three models."""
    from features.settings import Settings
    from pipelines.train import train

    results = train(
        Settings.resolve(home),
        ["churn", "customer_value", "growth_potential"],
        horizon_days=HORIZON,
        trials=0,
        step_days=STEP,
    )
    return {"promoted": {r.name: r.promoted for r in results}}


def make_current(home: str, base: str, day: str, customers: int, seed: int = SEED) -> dict:
    """The feature snapshot of `day`: `base`'s rows resampled to `customers` rows, new ids, jittered."""
    import numpy as np
    import pandas as pd

    from features.files import write_frame_atomically
    from features.settings import Settings

    snapshots = Settings.resolve(home).feature_snapshots
    source = snapshots.read(date.fromisoformat(base))
    rng = np.random.default_rng(seed)
    frame = source.iloc[rng.integers(0, len(source), customers)].reset_index(drop=True)
    frame["customer_id"] = [f"m{i:07d}" for i in range(customers)]
    frame["event_timestamp"] = pd.Timestamp(day, tz="UTC").as_unit(source["event_timestamp"].dt.unit)
    numeric = frame.select_dtypes("number").columns
    frame[numeric] = frame[numeric] * rng.uniform(1 - JITTER, 1 + JITTER, (customers, len(numeric)))
    write_frame_atomically(frame, snapshots.path(date.fromisoformat(day)))
    return {"rows": len(frame), "columns": frame.shape[1], "numeric": len(numeric)}


def matured(home: str, day: str) -> list[str]:
    """Tier snapshots up to `day` whose horizon has ended: `pipelines.monitor.matured_outcomes`'s rule."""
    from features.live_data import open_live_data
    from features.settings import Settings
    from features.snapshots import data_period

    settings = Settings.resolve(home)
    tiers = settings.tier_snapshots("lifecycle")
    horizon = int(tiers.read(date.fromisoformat(day), ["horizon_days"])["horizon_days"].iloc[0])
    known_until = data_period(open_live_data(settings)).last_order.date() + timedelta(days=1)
    upto = date.fromisoformat(day)
    return [d.isoformat() for d in tiers.dates() if d <= upto and d + timedelta(days=horizon) <= known_until]


def drift(home: str, day: str, rows: int) -> dict:
    """`column_drift` of the churn champion's features on the current frame, at most `rows` rows of it;
    the frame and the reference are loaded before the clock starts (`@@READY@@` marks it)."""
    from features.settings import Settings
    from monitoring.drift import column_drift
    from monitoring.reference import load_reference
    from training import registry
    from training.models import SPECS

    settings = Settings.resolve(home)
    registry.configure(settings)
    reference = load_reference(SPECS["churn"])
    current = settings.feature_snapshots.read(date.fromisoformat(day), reference.features)
    print(READY, flush=True)
    start, cpu = time.perf_counter(), time.process_time()
    result = column_drift(
        current, reference.sample, numerical=reference.numerical, categorical=reference.categorical, rows=rows
    )
    return {
        "seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu,
        "current_rows": result.current_rows,
        "reference_rows": result.reference_rows,
        "columns": {c.column: c.score for c in result.columns},
        "drifted": result.drifted,
    }


# The benchmark ----------------------------------------------------------------------------------


def prepare(home: str, customers: int) -> tuple[str, str, list[str]]:
    """The set-up of the module docstring (each step only when missing); returns (base day, D, notes)."""
    notes = []
    state = step(S + "home_state", home).result
    if not state["data"]:
        tierwise(home, "data", "synth", "--customers", str(SMALL_CUSTOMERS), "--seed", str(SEED))
        notes.append(f"synthesized {SMALL_CUSTOMERS:,} customers (seed {SEED})")
    if not state["test_cutoff"]:
        done = step(S + "train_champions", home)
        notes.append(f"trained three champions in {done.seconds:.0f} s (peak {done.peak_mb:,.0f} MB)")
        state = step(S + "home_state", home).result
    base = state["test_cutoff"]
    day = (date.fromisoformat(base) + timedelta(days=1)).isoformat()
    if base not in state["tiers"]:
        tierwise(home, "score", "--as-of", base)
        notes.append(f"scored {base}")
    if day not in state["features"] or state["tiers"].get(day) != customers:
        made = step(S + "make_current", home, base, day, customers)
        notes.append(f"current feature snapshot {day}: {made.result['rows']:,} rows in {made.seconds:.0f} s")
        done = tierwise(home, "score", "--as-of", day)
        notes.append(f"scored {day}: {done.seconds:.0f} s, peak {done.peak_mb:,.0f} MB")
    return base, day, notes


def output_sizes(home: str, day: str) -> dict[str, int]:
    """Bytes of every page and JSON file the monitor run of `day` wrote (paths relative to data/)."""
    data = Path(home) / "data"
    found = [
        *(data / "reports" / "monitoring").rglob(f"{day}*"),
        data / "alerts" / "monitoring" / f"{day}.json",
    ]
    return {str(p.relative_to(data)): p.stat().st_size for p in sorted(found) if p.is_file()}


def profile(home: str, day: str, path: str) -> None:
    """One more monitor run under cProfile; prints where `pipelines.monitor.monitor` spends its time:
    each function it calls directly, by cumulative seconds (cProfile slows Python code somewhat)."""
    import pstats

    argv = [sys.executable, "-m", "cProfile", "-o", path, "-m", "pipelines", "--home", home]
    done = run([*argv, "monitor", "--as-of", day])
    stats = pstats.Stats(path).stats  # type: ignore[attr-defined]
    (top, (*_, total, _)) = next(
        (key, value)
        for key, value in stats.items()
        if key[0].endswith("pipelines/monitor.py") and key[2] == "monitor"
    )
    calls = [
        (callers[top][3], callers[top][1], f"{Path(file).parent.name}/{Path(file).name}:{line} {name}")
        for (file, line, name), (*_, callers) in stats.items()
        if top in callers
    ]
    print(f"\nprofiled monitor run: {done.seconds:.1f} s (exit {done.code}), profile in {path}")
    print(f"{'seconds':>8} {'calls':>5}  inside pipelines.monitor.monitor")
    print(f"{total:8.1f} {1:5d}  the whole job")
    for seconds, count, where in sorted(calls, reverse=True)[:14]:
        print(f"{seconds:8.1f} {count:5d}  {where}")
    print(f"{done.seconds - total:8.1f} {'':5}  outside it: imports, start-up, exit")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", required=True, help="home to use (created and set up when missing)")
    parser.add_argument("--customers", type=int, default=1_000_000, help="rows of the monitored snapshot")
    parser.add_argument("--repeat", type=int, default=3, help="monitor runs; median and range are shown")
    parser.add_argument(
        "--full-frame-timeout", type=float, default=900, help="seconds for the full-frame run"
    )
    parser.add_argument("--memory-cap", type=float, default=14_000, help="MB at which a child is stopped")
    parser.add_argument("--skip-full-frame", action="store_true", help="no full-frame Evidently run")
    parser.add_argument("--profile", help="also profile one monitor run (cProfile) into this file")
    args = parser.parse_args()
    home = str(Path(args.home).expanduser().resolve())

    base, day, notes = prepare(home, args.customers)
    for note in notes:
        print(f"set-up: {note}", flush=True)
    matured_days = step(S + "matured", home, day).result
    if day in matured_days:
        raise SystemExit(f"{day} has matured outcomes: the run would not measure drift at full size")
    print(
        f"monitored snapshot {day} (rows resampled from {base}); matured snapshots also graded: {matured_days}"
    )

    runs = []
    for _ in range(args.repeat):
        done = run([sys.executable, "-m", "pipelines", "--home", home, "monitor", "--as-of", day])
        if done.code not in (0, 5):
            raise RuntimeError(f"tierwise monitor exited {done.code}:\n{done.output[-4000:]}")
        runs.append(done)
        print(f"monitor: {done.seconds:.1f} s, peak {done.peak_mb:,.0f} MB, exit {done.code}", flush=True)
    sizes = output_sizes(home, day)

    from monitoring.thresholds import Thresholds

    stat_rows = Thresholds().stat_rows
    sampled = step(S + "drift", home, day, stat_rows, memory_cap_mb=args.memory_cap)
    full = None
    if not args.skip_full_frame:
        full = step(
            S + "drift",
            home,
            day,
            10**9,
            timeout=args.full_frame_timeout,
            memory_cap_mb=args.memory_cap,
            clock_from=READY,
        )
    report(runs, sizes, sampled, full, args.customers, stat_rows, day, args.full_frame_timeout)
    if args.profile:
        profile(home, day, args.profile)


def report(
    runs: list[Run],
    sizes: dict[str, int],
    sampled: Run,
    full: Run | None,
    customers: int,
    stat_rows: int,
    day: str,
    limit: float,
) -> None:
    seconds = [r.seconds for r in runs]
    peaks = [r.peak_mb for r in runs]
    median = statistics.median(seconds)
    print(f"\n`tierwise monitor` on {customers:,} customers ({day}), {len(runs)} runs in fresh processes")
    print(f"{'':<58} {'figure':>22}  {'target':>12}  verdict")

    def line(label: str, figure: str, target: str = "", met: bool | None = None) -> None:
        verdict = "" if met is None else ("met" if met else "MISSED")
        print(f"{label:<58} {figure:>22}  {target:>12}  {verdict}")

    spread = f"{min(seconds):.1f}-{max(seconds):.1f}"
    line(
        "monitor wall time, median (min-max) s",
        f"{median:.1f} ({spread})",
        f"< {TARGET_SECONDS} s",
        median < TARGET_SECONDS,
    )
    line(
        "monitor peak RSS, max of runs MB",
        f"{max(peaks):,.0f}",
        f"< {TARGET_PEAK_MB:,} MB",
        max(peaks) < TARGET_PEAK_MB,
    )
    line("monitor CPU seconds, median", f"{statistics.median(r.cpu_seconds for r in runs):.1f}")
    for name, size in sizes.items():
        page = name.endswith(".html")
        line(
            f"  {name}",
            f"{size / 2**20:.2f} MB",
            f"< {TARGET_PAGE_MB} MB" if page else "",
            size / 2**20 < TARGET_PAGE_MB if page else None,
        )

    def drift_line(label: str, done: Run) -> float | None:
        result = done.result
        if result is None:
            line(label, done.stopped or f"failed (exit {done.code})")
            loaded = "inputs loaded" if READY in done.output else "stopped while loading its inputs"
            print(f"{'':<58} (child: {done.seconds:.0f} s in all, peak {done.peak_mb:,.0f} MB, {loaded})")
            return None
        line(label, f"{result['seconds']:.1f} s, {done.peak_mb:,.0f} MB")
        return result["seconds"]

    print()
    sampled_s = drift_line(f"column_drift, churn features, {stat_rows:,} current rows", sampled)
    columns = len(sampled.result["columns"])
    print(f"{'':<58} ({columns} columns, reference {sampled.result['reference_rows']:,} rows)")
    if full is not None:
        full_s = drift_line(f"column_drift, full frame ({customers:,} rows, no sampling)", full)
        if full_s is not None:
            print(f"{'ratio full-frame Evidently / monitor median':<58} {full_s / median:>22.2f}")
            print(f"{'ratio full-frame Evidently / sampled column_drift':<58} {full_s / sampled_s:>22.2f}")
            gaps = [abs(full.result["columns"][c] - s) for c, s in sampled.result["columns"].items()]
            verdicts = set(full.result["drifted"]) ^ set(sampled.result["drifted"])
            print(f"{'largest |distance full - sampled| over columns':<58} {max(gaps):>22.4f}")
            print(f"{'columns whose verdict differs, full vs sampled':<58} {len(verdicts):>22}")
        elif full.stopped and READY in full.output:
            print(f"{'ratio full-frame Evidently / monitor median, at least':<58} {limit / median:>22.2f}")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average at the end: {load} ({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
