"""Load test of the prediction service against BentoML's own ceiling, measured in the same run.

    .venv/bin/python -m benchmarks.bench_service [--home DIR] [--seconds 15] [--repeat 3]
                                                 [--overload-seconds 60]

The home must be served: champion models, features in the online store, a tier snapshot and the
stored answers (what `tierwise run` leaves). The script starts `tierwise serve` and
`benchmarks/trivial_service.py` (BentoML services configured the same way, one worker) and drives
both with `wrk` (Debian package `wrk`; `benchmarks/rotate_ids.lua` sends every request for another
customer, rotating over all of them, and counts statuses). The reference is BentoML's fastest path:
the trivial service's `/raw`, an `async` handler returning constant bytes of an answer's size.

Printed, each load `--repeat` times, as median (min–max): requests/s and latency percentiles of
`predict` and of the reference at concurrency 1 and 8, and their ratios (targets: at concurrency 8
at least 0.75x the reference's req/s and at most 1.5x its p99; single-client p50 at most 1.5 ms).
Then `predict` at twice its sustainable rate for `--overload-seconds`, paced per connection over
many connections (nearly open loop: more connections than `max_concurrency`): goodput (200s per
second, target at least 90% of the sustainable rate), 429s, other errors, and the service's memory
before and after. Then `predict_batch` with 100 ids (`hey`), and the in-process work without HTTP:
a stored answer, and an answer computed from the features, for 1 and 100 customers.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from features.settings import Settings
from tests.service_process import ServiceProcess, free_port

PROJECT_DIR = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SCRIPT = Path(__file__).with_name("rotate_ids.lua")


@dataclass(frozen=True)
class Load:
    label: str
    requests: int
    seconds: float
    p50: float
    p95: float
    p99: float
    statuses: dict[int, int]

    @property
    def rps(self) -> float:
        return self.statuses.get(200, 0) / self.seconds

    def line(self, reference: Load | None = None) -> str:
        text = (
            f"{self.label:<34} {self.rps:8.1f} req/s  p50 {self.p50:7.2f}  p95 {self.p95:7.2f}  "
            f"p99 {self.p99:7.2f} ms  statuses {self.statuses}"
        )
        if reference is not None:
            text += (
                f"  | vs trivial: {self.rps / reference.rps:.2f}x req/s, {self.p99 / reference.p99:.2f}x p99"
            )
        return text


def wrk(label: str, url: str, ids_file: Path, connections: int, seconds: float, delay_ms: int = 0) -> Load:
    """`wrk` with one thread for `seconds` over `connections`, each request for the next customer;
    with `delay_ms`, each connection waits that long before its next request. p95 is wrk's p90."""
    path = "/" + url.split("/", 3)[3]
    base = url[: len(url) - len(path)]
    env = {**os.environ, "IDS_FILE": str(ids_file), "TARGET_PATH": path, "DELAY_MS": str(delay_ms)}
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "10s",
        "-s",
        str(SCRIPT),
        base,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout
    found = re.search(r"^WRK (.*)$", output, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"wrk printed no summary:\n{output}")
    result = json.loads(found.group(1))
    statuses = {int(k): v for k, v in sorted(result["statuses"].items())}
    if result["socket_errors"]:
        statuses[0] = result["socket_errors"]
    return Load(
        label,
        result["requests"],
        result["seconds"],
        result["p50_us"] / 1000,
        result["p90_us"] / 1000,
        result["p99_us"] / 1000,
        statuses,
    )


def tree_rss_mb(service: ServiceProcess) -> float:
    root = psutil.Process(service.process.pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20


def hey(
    label: str, url: str, body: dict, concurrency: int, seconds: float, rate: float | None = None
) -> Load:
    """`hey` for `seconds` at `concurrency` (closed loop), or at `rate` requests/s in total (open loop)."""
    command = [
        "hey",
        "-z",
        f"{seconds}s",
        "-c",
        str(concurrency),
        "-m",
        "POST",
        "-T",
        "application/json",
        "-d",
        json.dumps(body),
        "-o",
        "csv",
        "-t",
        "20",
    ]
    if rate is not None:
        command += ["-q", f"{rate / concurrency:.3f}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rows = list(csv.DictReader(io.StringIO(output)))
    times = sorted(float(r["response-time"]) * 1000 for r in rows if r["status-code"] == "200") or [
        float("nan")
    ]
    statuses: dict[int, int] = {}
    for r in rows:
        statuses[int(r["status-code"])] = statuses.get(int(r["status-code"]), 0) + 1
    span = max(float(r["offset"]) + float(r["response-time"]) for r in rows) if rows else seconds

    def pct(q: float) -> float:
        return times[min(len(times) - 1, int(q * len(times)))]

    return Load(label, len(rows), span, pct(0.50), pct(0.95), pct(0.99), dict(sorted(statuses.items())))


def in_process(home: Path, customers: list[str]) -> dict[str, float]:
    """p50 ms of the service's work without HTTP: a stored answer (one online read), and an answer
    computed from the features (online read, three models, tiers, flags, reasons), 1 and 100 ids."""
    from serving.predictor import Predictor

    predictor = Predictor(Settings.resolve(home))
    timings: dict[str, list[float]] = {"stored 1": [], "computed 1": [], "computed 100": []}
    for i in range(2000):
        started = time.perf_counter()
        predictor.stored_answer(customers[i % len(customers)])
        timings["stored 1"].append((time.perf_counter() - started) * 1000)
    for i in range(400):
        started = time.perf_counter()
        predictor.predict_ids([customers[i % len(customers)]])
        timings["computed 1"].append((time.perf_counter() - started) * 1000)
    for i in range(40):
        chunk = [customers[(i * 100 + j) % len(customers)] for j in range(100)]
        started = time.perf_counter()
        predictor.predict_ids(chunk)
        timings["computed 100"].append((time.perf_counter() - started) * 1000)
    stored = sum(predictor.stored_answer(c) is not None for c in customers[:200])
    print(f"in-process: {stored} of the first 200 customers have a current stored answer")
    return {name: statistics.median(values[len(values) // 10 :]) for name, values in timings.items()}


def spread(values: list[float], digits: int = 1) -> str:
    """Median (min–max)."""
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, default=Path("/work/bench/cjhome"))
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--overload-seconds", type=float, default=60)
    args = parser.parse_args()
    import pandas as pd

    settings = Settings.resolve(args.home)
    tiers = sorted(settings.tier_snapshots_dir("lifecycle").glob("*.parquet"))
    customers = pd.read_parquet(tiers[-1], columns=["customer_id"]).customer_id.tolist()
    logs = Path(tempfile.mkdtemp(prefix="bench-service-"))
    ids_file = logs / "ids.txt"
    ids_file.write_text("\n".join(customers) + "\n")
    env = {**os.environ, "TIERWISE_HOME": str(settings.home), "BENTOML_HOME": str(logs / "bentoml")}
    real = ServiceProcess.tierwise(settings.home, logs / "real.log", env)
    trivial_port = free_port()
    trivial_command = [str(BIN / "bentoml"), "serve", "benchmarks.trivial_service:Trivial"]
    trivial_command += ["--port", str(trivial_port), "--working-dir", str(PROJECT_DIR)]
    trivial = ServiceProcess.start(trivial_command, trivial_port, logs / "trivial.log", env)
    predict, raw = real.url + "/predict", trivial.url + "/raw"
    try:
        real.wait(timeout=300)
        trivial.wait(timeout=300)
        print(
            f"home {settings.home}: {len(customers):,} customers (ids rotated over all); "
            f"{args.seconds:g} s per load, {args.repeat} repeats; cpus {os.cpu_count()}"
        )
        for target in (predict, raw):  # warm both, and every customer's stored answer into the page cache
            wrk("warm-up", target, ids_file, 4, 5)
        ratios: dict[str, list[float]] = {"rps": [], "p99": []}
        p50_single: list[float] = []
        for repeat in range(args.repeat):
            for connections in (1, 8):
                reference = wrk(
                    f"raw constant c={connections} #{repeat + 1}", raw, ids_file, connections, args.seconds
                )
                ours = wrk(
                    f"predict c={connections} #{repeat + 1}", predict, ids_file, connections, args.seconds
                )
                print(reference.line())
                print(ours.line(reference))
                if connections == 1:
                    p50_single.append(ours.p50)
                else:
                    ratios["rps"].append(ours.rps / reference.rps)
                    ratios["p99"].append(ours.p99 / reference.p99)
        print(
            f"predict c=8 vs raw constant: {spread(ratios['rps'], 2)}x req/s (target >= 0.75), "
            f"{spread(ratios['p99'], 2)}x p99 (target <= 1.5); single-client p50 {spread(p50_single, 2)} ms "
            "(target <= 1.5)"
        )
        overload(real, predict, ids_file, args.seconds, args.overload_seconds)
        batch = {"customer_ids": customers[:100]}
        for concurrency in (1, 8):
            print(
                hey(
                    f"predict_batch 100 ids c={concurrency}",
                    real.url + "/predict_batch",
                    batch,
                    concurrency,
                    args.seconds,
                ).line()
            )
    finally:
        real.stop()
        trivial.stop()
    work = in_process(settings.home, customers)
    print("in-process (no HTTP), p50 ms: " + ", ".join(f"{name} {ms:.3f}" for name, ms in work.items()))


#: Connections of the overload run: well above `max_concurrency` (32), so arrivals do not wait for answers.
OVERLOAD_CONNECTIONS = 128


def overload(
    real: ServiceProcess, predict: str, ids_file: Path, seconds: float, overload_seconds: float
) -> None:
    """`predict` at twice its sustainable rate: each of many connections paced to its share."""
    sustainable = wrk("predict c=8 (rate probe)", predict, ids_file, 8, seconds).rps
    delay_ms = max(1, round(1000 * OVERLOAD_CONNECTIONS / (2 * sustainable)))
    rss_before = tree_rss_mb(real)
    load = wrk(
        f"predict at 2x = {2 * sustainable:.0f}/s",
        predict,
        ids_file,
        OVERLOAD_CONNECTIONS,
        overload_seconds,
        delay_ms=delay_ms,
    )
    rss_after = tree_rss_mb(real)
    print(load.line())
    shed = load.statuses.get(429, 0)
    other = sum(n for status, n in load.statuses.items() if status not in (200, 429))
    offered = load.requests / load.seconds
    print(
        f"overload {overload_seconds:g} s: offered {offered:.0f}/s ({offered / sustainable:.2f}x the sustainable "
        f"{sustainable:.0f}/s), goodput {load.rps:.0f}/s = {load.rps / sustainable:.0%} of sustainable "
        f"(target >= 90%), {shed:,} shed (429), {other} other errors; service memory "
        f"{rss_before:.0f} MB -> {rss_after:.0f} MB"
    )


if __name__ == "__main__":
    main()
