"""Load test of the prediction service against BentoML's own ceiling, measured in the same run.

    .venv/bin/python -m benchmarks.bench_service [--home DIR] [--seconds 15] [--overload-seconds 60]

The home must be served: champion models, features in the online store and a tier snapshot (what
`tierwise run` leaves). The script starts `tierwise serve` and `benchmarks/trivial_service.py` (a
BentoML service returning a constant, configured the same way) and drives both with `hey` (Debian
package `hey`; the load generator shares the 2 cores). It prints, for `predict` at concurrency
1/8/32 and `predict_batch` with 100 ids: requests/s and p50/p95/p99, and the ratios to the trivial
endpoint under the same load; then the same work in-process (no HTTP) for 1 and 100 customers; then a
run at twice the sustainable rate, counting shed requests (503/429), other errors, and the service's
memory before and after.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
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
            f"{self.label:<34} {self.rps:8.1f} req/s  p50 {self.p50:7.1f}  p95 {self.p95:7.1f}  "
            f"p99 {self.p99:7.1f} ms  statuses {self.statuses}"
        )
        if reference is not None:
            text += (
                f"  | vs trivial: {self.rps / reference.rps:.2f}x req/s, {self.p99 / reference.p99:.2f}x p99"
            )
        return text


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


def in_process(home: Path, customers: list[str]) -> tuple[float, float]:
    """p50 ms of the service's work without HTTP: Feast online read, three models, tiers, flags, reasons."""
    from serving.predictor import Predictor

    predictor = Predictor(Settings.resolve(home))
    one, hundred = [], []
    for i in range(400):
        started = time.perf_counter()
        predictor.predict_ids([customers[i % len(customers)]])
        one.append((time.perf_counter() - started) * 1000)
    for i in range(40):
        chunk = [customers[(i * 100 + j) % len(customers)] for j in range(100)]
        started = time.perf_counter()
        predictor.predict_ids(chunk)
        hundred.append((time.perf_counter() - started) * 1000)
    return statistics.median(one[50:]), statistics.median(hundred[5:])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, default=Path("/work/bench/cjhome"))
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--overload-seconds", type=float, default=60)
    args = parser.parse_args()
    import pandas as pd

    settings = Settings.resolve(args.home)
    tiers = sorted(settings.tier_snapshots_dir("lifecycle").glob("*.parquet"))
    customers = pd.read_parquet(tiers[-1], columns=["customer_id"]).customer_id.tolist()
    logs = Path(tempfile.mkdtemp(prefix="bench-service-"))
    env = {**os.environ, "TIERWISE_HOME": str(settings.home), "BENTOML_HOME": str(logs / "bentoml")}
    real = ServiceProcess.tierwise(settings.home, logs / "real.log", env)
    trivial_port = free_port()
    trivial_command = [str(BIN / "bentoml"), "serve", "benchmarks.trivial_service:Trivial"]
    trivial_command += ["--port", str(trivial_port), "--working-dir", str(PROJECT_DIR)]
    trivial = ServiceProcess.start(trivial_command, trivial_port, logs / "trivial.log", env)
    real_url, trivial_url = real.url, trivial.url
    try:
        real.wait(timeout=300)
        trivial.wait(timeout=300)
        print(
            f"home {settings.home}: {len(customers):,} customers; {args.seconds:g} s per load; cpus {os.cpu_count()}"
        )
        one = {"customer_id": customers[0]}
        for target in (real_url, trivial_url):  # warm both
            hey("warm-up", target + "/predict", one, 4, 3)
        for concurrency in (1, 8, 32):
            base = hey(f"trivial  c={concurrency}", trivial_url + "/predict", one, concurrency, args.seconds)
            ours = hey(f"predict  c={concurrency}", real_url + "/predict", one, concurrency, args.seconds)
            print(base.line())
            print(ours.line(base))
        batch = {"customer_ids": customers[:100]}
        for concurrency in (1, 8):
            print(
                hey(
                    f"predict_batch 100 ids c={concurrency}",
                    real_url + "/predict_batch",
                    batch,
                    concurrency,
                    args.seconds,
                ).line()
            )
        sustainable = hey("predict  c=8 (rate probe)", real_url + "/predict", one, 8, args.seconds).rps
        rss_before = tree_rss_mb(real)
        overload = hey(
            f"predict at 2x = {2 * sustainable:.0f}/s",
            real_url + "/predict",
            one,
            64,
            args.overload_seconds,
            rate=2 * sustainable,
        )
        rss_after = tree_rss_mb(real)
        print(overload.line())
        shed = sum(n for s, n in overload.statuses.items() if s in (429, 503))
        other = sum(n for s, n in overload.statuses.items() if s not in (200, 429, 503))
        print(
            f"overload {args.overload_seconds:g} s: {overload.requests:,} requests, {shed:,} shed (503/429), "
            f"{other} other errors; service memory {rss_before:.0f} MB -> {rss_after:.0f} MB"
        )
    finally:
        real.stop()
        trivial.stop()
    p50_one, p50_hundred = in_process(settings.home, customers)
    print(
        f"in-process (no HTTP): 1 customer p50 {p50_one:.2f} ms (target 2); 100 customers p50 {p50_hundred:.1f} ms (target 60)"
    )


if __name__ == "__main__":
    main()
