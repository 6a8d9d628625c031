"""Load test of the prediction service against BentoML's own ceiling, measured in the same run.

    .venv/bin/python -m benchmarks.bench_service [--home DIR] [--seconds 15] [--repeat 3]
                                                 [--overload-seconds 60] [--only overload]
                                                 [--edge nginx] [--edge-reads-in-flight 16]
                                                 [--generator k6|wrk2] [--wrk2 PATH]

The home must be served: champion models, features in the online store, a tier snapshot and the
stored answers (what `tierwise run` leaves); the service opens the home's event log (SQLite), so
point it at a copy of a home that must stay untouched. The script starts `tierwise serve` and
`benchmarks/trivial_service.py` (BentoML services configured the same way, one worker) and drives
both with `wrk` (Debian package `wrk`; `benchmarks/rotate_ids.lua` sends every request for another
customer, rotating over all of them, and counts statuses). The reference is BentoML's fastest path:
the trivial service's `/raw`, an `async` handler returning constant bytes of an answer's size.

Printed, each load `--repeat` times, as median (min–max): requests/s and latency percentiles of
`predict` and of the reference at concurrency 1 and 8, and their ratios (targets: at concurrency 8
at least 0.75x the reference's req/s and at most 1.5x its p99; single-client p50 at most 1.5 ms).

Then the overload, `--repeat` times (`--only overload` runs just this, without the reference): the
sustainable rate is measured first, as today, by `wrk` closed loop at concurrency 8 for `--seconds`
(200s per second; wrk is the lighter generator, so the service has as much of the machine as it can
get and the rate is not understated), then `predict` gets twice that rate, open loop, for
`--overload-seconds`: k6 (`k6` in the `bench` group, `benchmarks/overload.js`, `constant-arrival-rate`)
starts each request on schedule whether or not earlier ones were answered, ids rotating over all
customers. Printed: the rate offered and its ratio to the sustainable rate, goodput (200s per
second; target at least 90% of the sustainable rate), 429s, other errors by status (0: no answer
within `K6_TIMEOUT_SECONDS`), iterations k6 dropped for want of a free virtual user (any means the
load was not fully open loop), latencies of 200s and 429s, the service's CPU (cores, microseconds
per request sent, and per 200 in the probe) and k6's, and the service's memory before, at its peak
and after. Then `predict_batch` with 100 ids (`hey`), and the in-process work without HTTP: a
stored answer, and an answer computed from the features, for 1 and 100 customers.

With `--edge nginx` the overload goes through `deploy/nginx/tierwise.conf` (Debian's `nginx-light`),
which passes at most `--edge-reads-in-flight` reads (16) to the service and refuses the rest in C:
the sustainable rate is probed through nginx (and, to show what the proxy costs, directly), then the
generator offers twice that rate to nginx. nginx's CPU is printed beside the service's.

With `--generator wrk2` the overload's load comes from wrk2 (github.com/giltene/wrk2, built with
`make`; not packaged by Debian) with `benchmarks/open_loop.lua` instead of k6: constant throughput
over `WRK2_CONNECTIONS` connections, latency measured from when each request was due (so a backlog
shows as latency), for about a fifth of k6's CPU. It is open loop as long as a connection is free
when a request is due; the requests it sent per second are printed beside the rate offered. On two
cores k6 took a whole core at twice the sustainable rate and starved the service and nginx.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from features.settings import Settings
from tests.service_process import EdgeProxy, ServiceProcess, free_port

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


def split_url(url: str) -> tuple[str, str]:
    """`http://host:port/path` as (`http://host:port`, `/path`): the load generators take them apart."""
    path = "/" + url.split("/", 3)[3]
    return url[: len(url) - len(path)], path


def wrk(label: str, url: str, ids_file: Path, connections: int, seconds: float, delay_ms: int = 0) -> Load:
    """`wrk` with one thread for `seconds` over `connections`, each request for the next customer;
    with `delay_ms`, each connection waits that long before its next request. p95 is wrk's p90."""
    base, path = split_url(url)
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
    label: str,
    url: str,
    body: dict,
    concurrency: int,
    seconds: float,
    rate: float | None = None,
    token: str | None = None,
) -> Load:
    """`hey` for `seconds` at `concurrency` (closed loop), or at `rate` requests/s in total (open loop),
    sending `token` as the bearer token if given."""
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
    if token is not None:
        command += ["-H", f"Authorization: Bearer {token}"]
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
    parser.add_argument(
        "--only", choices=["overload"], help="run only this step (the overload: its probe and k6 run)"
    )
    parser.add_argument("--edge", choices=["nginx"], help="run the overload through this proxy")
    parser.add_argument("--generator", choices=["k6", "wrk2"], default="k6", help="the overload's load")
    parser.add_argument("--wrk2", default="wrk2", help="the wrk2 binary (`--generator wrk2`)")
    parser.add_argument(
        "--edge-reads-in-flight", type=int, default=16, help="reads the proxy passes on at once"
    )
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
    trivial = None
    if args.only is None:
        trivial_port = free_port()
        trivial_command = [str(BIN / "bentoml"), "serve", "benchmarks.trivial_service:Trivial"]
        trivial_command += ["--port", str(trivial_port), "--working-dir", str(PROJECT_DIR)]
        trivial = ServiceProcess.start(trivial_command, trivial_port, logs / "trivial.log", env)
    predict = real.url + "/predict"
    try:
        real.wait(timeout=300)
        if trivial is not None:
            trivial.wait(timeout=300)
        print(
            f"home {settings.home}: {len(customers):,} customers (ids rotated over all); "
            f"{args.seconds:g} s per load, {args.repeat} repeats; cpus {os.cpu_count()}; "
            f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        )
        # Warm both, and every customer's stored answer into the page cache.
        for target in (predict,) if trivial is None else (predict, trivial.url + "/raw"):
            wrk("warm-up", target, ids_file, 4, 5)
        if trivial is not None:
            compare(predict, trivial.url + "/raw", ids_file, args.seconds, args.repeat)
        runs = []
        for repeat in range(args.repeat):
            runs.append(
                overload(
                    real,
                    predict,
                    ids_file,
                    args.seconds,
                    args.overload_seconds,
                    args.edge,
                    args.edge_reads_in_flight,
                    args.wrk2 if args.generator == "wrk2" else None,
                )
            )
            print(f"#{repeat + 1} {runs[-1].line()}")
            print(f"   load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(
            f"overload, {len(runs)} runs of {args.overload_seconds:g} s: offered "
            f"{spread([r.offered / r.sustainable for r in runs], 2)}x sustainable, goodput "
            f"{spread([100 * r.goodput / r.sustainable for r in runs], 0)}% of sustainable (target >= 90), "
            f"shed {spread([r.shed / r.seconds for r in runs], 0)}/s, other errors "
            f"{sum(r.other for r in runs)}, dropped iterations {sum(r.summary['dropped_iterations'] for r in runs)}; "
            f"service CPU {spread([r.cpu_us for r in runs], 0)} us per request sent, "
            f"{spread([r.probe_cpu_us for r in runs], 0)} us per 200 in the probes; "
            f"service memory {runs[0].rss_before:.0f} MB -> {runs[-1].rss_after:.0f} MB "
            f"(peak {max(r.rss_peak for r in runs):.0f})"
        )
        if args.only is None:
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
        if trivial is not None:
            trivial.stop()
    if args.only is None:
        work = in_process(settings.home, customers)
        print("in-process (no HTTP), p50 ms: " + ", ".join(f"{name} {ms:.3f}" for name, ms in work.items()))


def compare(predict: str, raw: str, ids_file: Path, seconds: float, repeat: int) -> None:
    """`predict` against the reference at concurrency 1 and 8, `repeat` times each."""
    ratios: dict[str, list[float]] = {"rps": [], "p99": []}
    p50_single: list[float] = []
    for run in range(repeat):
        for connections in (1, 8):
            reference = wrk(f"raw constant c={connections} #{run + 1}", raw, ids_file, connections, seconds)
            ours = wrk(f"predict c={connections} #{run + 1}", predict, ids_file, connections, seconds)
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


#: The overload run's k6 script (open loop, `constant-arrival-rate`).
K6_SCRIPT = Path(__file__).with_name("overload.js")
#: A request of the overload run unanswered after this many seconds counts as an error (status 0).
K6_TIMEOUT_SECONDS = 2
#: k6 virtual users, as seconds of arrivals, all allocated before the run: one VU carries one request
#: at a time and is held at most the timeout, so an arrival always finds one free (k6 counts any it
#: drops). k6 hands arrivals to its VUs in turn and each VU has its own connection, so the first
#: `K6_VU_SECONDS` of the run open that many connections, reused after that.
K6_VU_SECONDS = 1.5 * K6_TIMEOUT_SECONDS


@dataclass(frozen=True)
class Overload:
    """One open-loop run at twice the sustainable rate, and what the service spent on it."""

    sustainable: float  # 200s per second of the closed-loop probe just before
    seconds: float
    summary: dict  # what `overload.js` wrote
    rss_before: float
    rss_peak: float
    rss_after: float
    probe_cpu_us: float  # service CPU per 200 in the probe, microseconds
    service_cpu: float  # service CPU seconds during the run
    service_cores: list[float]  # the service's CPU in each second of the run, in cores
    k6_cpu: float  # the load generator's CPU seconds (its start included)
    wall: float  # seconds from k6's start to its end
    k6_rss: float  # the largest RSS of any load generator so far (k6's), MB
    direct: float | None = None  # with an edge: 200s per second of the same probe without it
    edge_cpu: float | None = None  # with an edge: its CPU seconds during the run

    @property
    def k6_cores(self) -> float:
        return self.k6_cpu / self.wall

    @property
    def statuses(self) -> dict[int, int]:
        return {int(status): n for status, n in self.summary["statuses"].items()}

    @property
    def offered(self) -> float:
        return self.summary["requests"] / self.seconds

    @property
    def goodput(self) -> float:
        return self.statuses.get(200, 0) / self.seconds

    @property
    def shed(self) -> int:
        return self.statuses.get(429, 0)

    @property
    def other(self) -> int:
        return self.summary["requests"] - self.statuses.get(200, 0) - self.shed

    @property
    def cpu_us(self) -> float:
        """Service CPU per request sent, whatever became of it (microseconds)."""
        return 1e6 * self.service_cpu / max(1, self.summary["requests"])

    def line(self) -> str:
        served, refused = self.summary["served_latency"] or {}, self.summary["shed_latency"] or {}
        if "sent" in self.summary:  # wrk2: one latency for every answer, from when it was due
            latency = f"all answers p50 {served['p50_ms']:.1f} p99 {served['p99_ms']:.0f} ms"
            generator = f"sent {self.summary['sent'] / self.seconds:.0f}/s over {self.summary['vus_max']} connections; wrk2"
        else:
            latency = (
                f"200 p50 {served.get('p50_ms', float('nan')):.1f} p99 {served.get('p99_ms', float('nan')):.0f} ms, "
                f"429 p50 {refused.get('p50_ms', float('nan')):.1f} p99 {refused.get('p99_ms', float('nan')):.0f} ms"
            )
            generator = f"{self.summary['dropped_iterations']:,} dropped iterations ({self.summary['vus_max']} VUs); k6"
        return (
            f"overload {self.seconds:g} s: offered {self.offered:.0f}/s ({self.offered / self.sustainable:.2f}x "
            f"the sustainable {self.sustainable:.0f}/s), goodput {self.goodput:.0f}/s = "
            f"{self.goodput / self.sustainable:.0%} of sustainable (target >= 90%), {self.shed:,} shed (429), "
            f"{self.other} other errors {dict(sorted(self.statuses.items()))}; {latency}; "
            f"service CPU {statistics.median(self.service_cores):.2f} cores a second (max "
            f"{max(self.service_cores):.2f}), {self.cpu_us:.0f} us per request sent (probe: {self.probe_cpu_us:.0f} "
            f"us per 200); {generator} {self.k6_cores:.2f} cores, {self.k6_rss:.0f} MB; service memory "
            f"{self.rss_before:.0f} MB -> {self.rss_after:.0f} MB (peak {self.rss_peak:.0f})"
            + (
                ""
                if self.direct is None or self.edge_cpu is None
                else f"; nginx {self.edge_cpu / self.wall:.2f} cores, sustainable without it {self.direct:.0f}/s"
            )
        )


def tree_cpu_seconds(service: ServiceProcess | EdgeProxy) -> float:
    root = psutil.Process(service.process.pid)
    return sum(sum(p.cpu_times()[:2]) for p in [root, *root.children(recursive=True)])


def children_cpu_seconds() -> float:
    """CPU of this process's ended and waited-for children (the load generators run one at a time)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def k6_open_loop(url: str, ids_file: Path, rate: float, seconds: float) -> dict:
    """`k6` (`overload.js`) starting `rate` requests per second for `seconds`, whether or not earlier
    ones were answered; returns the script's summary. k6's warnings are printed."""
    summary_file = ids_file.with_name("overload-summary.json")
    summary_file.unlink(missing_ok=True)
    env = {
        **os.environ,
        "IDS_FILE": str(ids_file),
        "TARGET_URL": url,
        "RATE": str(round(rate)),
        "SECONDS": f"{seconds:g}",
        "VUS": str(max(50, round(rate * K6_VU_SECONDS))),
        "TIMEOUT": f"{K6_TIMEOUT_SECONDS:g}s",
        "SUMMARY_FILE": str(summary_file),
    }
    command = [str(BIN / "k6"), "run", "--quiet", "--no-usage-report", "--no-color", str(K6_SCRIPT)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    warnings: dict[str, int] = {}
    for line in (done.stdout + done.stderr).splitlines():
        found = re.search(r'level=(warning|error) msg="([^"]*)"(?: error="(.*)")?', line)
        if found is not None:  # one line per kind: a failed request's error without its URL
            error = (found.group(3) or "").rsplit(": ", 1)[-1]
            text = f"{found.group(1)}: {found.group(2)}" + (f" ({error})" if error else "")
            warnings[text] = warnings.get(text, 0) + 1
    for text, count in warnings.items():
        print(f"k6 {text}: {count:,} times")
    if done.returncode != 0 or not summary_file.exists():
        raise RuntimeError(f"k6 exited with {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return json.loads(summary_file.read_text())


#: wrk2's connections in the overload run: enough that one is free whenever a request is due.
WRK2_CONNECTIONS = 512
WRK2_SCRIPT = Path(__file__).with_name("open_loop.lua")


def wrk2_open_loop(binary: str, url: str, ids_file: Path, rate: float, seconds: float) -> dict:
    """wrk2 (`open_loop.lua`) at `rate` requests per second for `seconds`; returns a summary shaped like
    `overload.js`'s (statuses 200, 429 and 0 for no answer within `K6_TIMEOUT_SECONDS`), plus `sent`."""
    base, path = split_url(url)
    env = {**os.environ, "IDS_FILE": str(ids_file), "TARGET_PATH": path}
    command = [binary, "-t1", f"-c{WRK2_CONNECTIONS}", f"-d{seconds:g}s", f"-R{round(rate)}"]
    command += ["--timeout", f"{K6_TIMEOUT_SECONDS}s", "-s", str(WRK2_SCRIPT), base]
    output = subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout
    found = re.search(r"^WRK2 (.*)$", output, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"wrk2 printed no summary:\n{output}")
    result = json.loads(found.group(1))
    unanswered = result["timeouts"] + result["socket_errors"]
    statuses = {200: result["ok"], 429: result["shed"], 0: unanswered}
    return {
        "requests": result["ok"] + result["shed"] + result["other"] + unanswered,
        "sent": result["requests"] + unanswered,
        "statuses": {status: n for status, n in statuses.items() if n},
        "dropped_iterations": 0,
        "vus_max": WRK2_CONNECTIONS,
        "served_latency": {
            "p50_ms": result["p50_us"] / 1000,
            "p90_ms": result["p90_us"] / 1000,
            "p99_ms": result["p99_us"] / 1000,
            "max_ms": result["max_us"] / 1000,
        },
        "shed_latency": None,
    }


def overload(
    real: ServiceProcess,
    predict: str,
    ids_file: Path,
    seconds: float,
    overload_seconds: float,
    edge: str | None = None,
    edge_reads_in_flight: int = 16,
    wrk2: str | None = None,
) -> Overload:
    """`predict` at twice its sustainable rate, open loop (k6), the probe's rate just before; with
    `edge`, through nginx (module docstring)."""
    direct = proxy = None
    path = split_url(predict)[1]
    target = predict
    if edge is not None:
        direct = wrk("predict c=8 (rate probe, no proxy)", predict, ids_file, 8, seconds).rps
        proxy = EdgeProxy(_nginx(), real.url, edge_reads_in_flight)
        target = proxy.url + path
    try:
        cpu_before = tree_cpu_seconds(real)
        probe = wrk("predict c=8 (rate probe)", target, ids_file, 8, seconds)
        probe_cpu_us = 1e6 * (tree_cpu_seconds(real) - cpu_before) / max(1, probe.statuses.get(200, 0))
        sustainable = probe.rps
        rss_before = tree_rss_mb(real)
        peak, cores = [rss_before], []
        stop = threading.Event()

        def sample() -> None:  # each second: the service's memory and CPU
            last = tree_cpu_seconds(real)
            while not stop.wait(1):
                peak[0] = max(peak[0], tree_rss_mb(real))
                now = tree_cpu_seconds(real)
                cores.append(now - last)
                last = now

        sampler = threading.Thread(target=sample, daemon=True)
        cpu_before, k6_before = tree_cpu_seconds(real), children_cpu_seconds()
        edge_before = tree_cpu_seconds(proxy) if proxy is not None else 0.0
        started = time.perf_counter()
        sampler.start()
        try:
            if wrk2 is None:
                summary = k6_open_loop(target, ids_file, 2 * sustainable, overload_seconds)
            else:
                summary = wrk2_open_loop(wrk2, target, ids_file, 2 * sustainable, overload_seconds)
        finally:
            stop.set()
            sampler.join()
        wall = time.perf_counter() - started
        service_cpu, k6_cpu = tree_cpu_seconds(real) - cpu_before, children_cpu_seconds() - k6_before
        edge_cpu = tree_cpu_seconds(proxy) - edge_before if proxy is not None else None
    finally:
        if proxy is not None:
            proxy.stop()
    rss_after = tree_rss_mb(real)
    return Overload(
        sustainable,
        overload_seconds,
        summary,
        rss_before,
        max(peak[0], rss_after),
        rss_after,
        probe_cpu_us,
        service_cpu,
        cores or [float("nan")],
        k6_cpu,
        wall,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        direct,
        edge_cpu,
    )


def _nginx() -> str:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        raise SystemExit("--edge nginx needs nginx (Debian: apt-get install nginx-light)")
    return binary


if __name__ == "__main__":
    main()
