"""Order events against the real service: time from `POST /orders` to an updated answer, and how many
events one worker sustains while `predict` traffic continues.

    .venv/bin/python -m benchmarks.bench_events [--home DIR] [--events 150] [--seconds 30] [--repeat 3]
                                                [--predict-clients 4] [--batch 1]

The home must be served (what `tierwise run` leaves); the script works on a copy, since events
change the online store. It starts `tierwise serve` with one worker and, in each repeat:

1. latency: events sent one at a time, each for another customer (rotated over all of them), while
   `hey` keeps `--predict-clients` clients (4) calling `predict` in the background (0: none); an event's answer is updated when its
   POST returns (the service applies it before answering), so the POST time is event → answer;
2. throughput: 8 clients sending events as fast as they are answered for `--seconds`, with the same
   `predict` load; events applied per second. With `--batch N` each POST carries N orders (of N
   customers), as a shop forwarding its order stream would send them; the latency step stays at one.

Printed: p50/p99 of event → answer, events/s, the `predict` load beside them, and the issue's
targets (p50 ≤ 30 ms, p99 ≤ 100 ms, ≥ 100 events/s); medians over the repeats with min–max.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import httpx
import pandas as pd

from benchmarks.bench_service import hey
from features.settings import Settings
from tests.service_process import ServiceProcess

TOKEN = "bench-events-admin-token-0123456789"


def basket(order_id: str, customer: str, product: str, ordered_at: str) -> dict:
    return {
        "order_id": order_id,
        "customer_id": customer,
        "ordered_at": ordered_at,
        "lines": [{"product_id": product, "quantity": 1, "amount": 2.49}],
    }


def served_sample(settings: Settings) -> tuple[date, list[str], str]:
    """The latest tier snapshot's date and customers, and a product an imported order holds: what
    the events of a benchmark are made of."""
    day = settings.tier_snapshots("lifecycle").dates()[-1]
    customers = pd.read_parquet(
        settings.tier_snapshots_dir("lifecycle") / f"{day}.parquet", columns=["customer_id"]
    ).customer_id.tolist()
    lines = settings.data_dir / "tables" / "order_lines"
    product = str(pd.read_parquet(next(lines.rglob("*.parquet")), columns=["product_id"]).product_id.iloc[0])
    return day, customers, product


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def sustained(
    url: str,
    headers: dict,
    customers: list[str],
    product: str,
    ordered_at: str,
    first: int,
    seconds: float,
    batch: int = 1,
) -> tuple[float, int, dict[int, int]]:
    """Events/s applied with 8 clients sending `batch` events a POST as fast as they are answered; the
    next order number; and the POSTs answered otherwise than 200, by status."""
    numbers = iter(range(first, first + 10**9))
    lock = threading.Lock()
    done: list[int] = []
    other: dict[int, int] = {}
    deadline = time.monotonic() + seconds

    def client() -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=60) as api:
            while time.monotonic() < deadline:
                with lock:
                    sent = [next(numbers) for _ in range(batch)]
                orders = [
                    basket(f"bench-{n}", customers[n % len(customers)], product, ordered_at) for n in sent
                ]
                status = api.post("/orders", json={"orders": orders}).status_code
                if status == 200:
                    done.extend(sent)
                else:
                    other[status] = other.get(status, 0) + 1

    started = time.monotonic()
    clients = [threading.Thread(target=client) for _ in range(8)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()
    return len(done) / (time.monotonic() - started), next(numbers), other


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, default=Path("/work/bench/cjhome"))
    parser.add_argument("--events", type=int, default=150)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--predict-clients",
        type=int,
        default=4,
        help="hey clients calling predict beside the events (0: none)",
    )
    parser.add_argument("--batch", type=int, default=1, help="events per POST in the throughput step")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="bench-events-"))
    home = scratch / "home"
    for part in ("data", "mlruns"):
        shutil.copytree(args.home / part, home / part, symlinks=True)
    settings = Settings.resolve(home)
    snapshot_day, customers, product = served_sample(settings)
    ordered_at = f"{snapshot_day}T10:00:00"
    env = {**os.environ, "TIERWISE_API_TOKEN": TOKEN, "BENTOML_HOME": str(scratch / "bentoml")}
    service = ServiceProcess.tierwise(home, scratch / "service.log", env)
    sent = 0
    try:
        service.wait("/readyz", 300)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        load = f"hey -c {args.predict_clients}" if args.predict_clients else "none"
        print(
            f"home {args.home} ({len(customers):,} customers), one worker, predict load: {load}; "
            f"throughput with {args.batch} event(s) a POST"
        )
        latencies, rates, beside = [], [], []
        for repeat in range(args.repeat):
            loads: list = []
            background = threading.Thread(
                target=lambda into: into.append(
                    hey(
                        "predict",
                        service.url + "/predict",
                        {"customer_id": customers[0]},
                        args.predict_clients,
                        args.seconds * 2,
                        token=TOKEN,
                    )
                ),
                args=(loads,),
            )
            if args.predict_clients:
                background.start()
            times = []
            with httpx.Client(base_url=service.url, headers=headers, timeout=60) as api:
                for _ in range(args.events):
                    customer = customers[sent % len(customers)]
                    body = {"orders": [basket(f"bench-{sent}", customer, product, ordered_at)]}
                    started = time.perf_counter()
                    answer = api.post("/orders", json=body)
                    times.append((time.perf_counter() - started) * 1000)
                    assert answer.status_code == 200, answer.text
                    sent += 1
            rate, sent, refused = sustained(
                service.url, headers, customers, product, ordered_at, sent, args.seconds / 2, args.batch
            )
            if args.predict_clients:
                background.join()
                beside.extend(load.rps for load in loads)
            p50, p99 = percentile(times, 0.5), percentile(times, 0.99)
            latencies.append((p50, p99))
            rates.append(rate)
            print(
                f"repeat {repeat + 1}: event → answer p50 {p50:.1f} ms, p99 {p99:.1f} ms; {rate:.1f} events/s"
                + (
                    f"; predict beside them {loads[0].rps:.0f} req/s, p99 {loads[0].p99:.1f} ms"
                    if loads
                    else ""
                )
                + (f" (POSTs not applied, by status: {refused})" if refused else "")
            )
        p50s, p99s = [p for p, _ in latencies], [p for _, p in latencies]
        print(
            f"median of {args.repeat}: event → answer p50 {statistics.median(p50s):.1f} ms "
            f"({min(p50s):.1f}–{max(p50s):.1f}; target ≤ 30), p99 {statistics.median(p99s):.1f} ms "
            f"({min(p99s):.1f}–{max(p99s):.1f}; target ≤ 100); {statistics.median(rates):.1f} events/s "
            f"({min(rates):.1f}–{max(rates):.1f}; target ≥ 100)"
            + (
                f"; predict beside them {statistics.median(beside):.0f} req/s ({min(beside):.0f}–{max(beside):.0f})"
                if beside
                else ""
            )
        )
    finally:
        service.stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
