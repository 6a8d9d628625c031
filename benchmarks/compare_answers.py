"""Record what a served home answers, so two versions of the code can be compared byte for byte.

    .venv/bin/python -m benchmarks.compare_answers --home DIR --out before.json [--customers 20]
    .venv/bin/python -m benchmarks.compare_answers --home DIR --out after.json
    .venv/bin/python -m benchmarks.compare_answers --diff before.json after.json

The home must be served (what `tierwise run` leaves: champions, online store, a lifecycle tier
snapshot). The script only drives the `tierwise` command line and the HTTP API — it imports none of
the project's modules — so it runs unchanged against the code before and after a restructuring:

- the batch snapshot: `tierwise score --as-of <latest> --output <tmp>.parquet`, every column of every
  row, as a SHA-256 of a canonical CSV plus the row count and columns;
- the HTTP answers of `tierwise serve` for the first N customers of that snapshot (sorted ids) and an
  unknown id: `POST /predict` for each, and one `POST /predict_batch` with all of them.

`--diff` exits 1 and names the first difference when two recordings differ.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def snapshot_digest(home: Path, work: Path) -> tuple[dict, list[str]]:
    """Score the latest feature snapshot into a file; its digest and the customer ids."""
    import pandas as pd

    features = sorted((home / "data" / "features" / "customer").glob("*.parquet"))
    as_of = features[-1].stem
    output = work / "snapshot.parquet"
    subprocess.run(
        [str(BIN / "tierwise"), "--home", str(home), "score", "--as-of", as_of, "--output", str(output)],
        check=True,
        capture_output=True,
    )
    frame = pd.read_parquet(output).sort_values("customer_id", ignore_index=True)
    canonical = frame.to_csv(index=False, float_format="%.17g").encode()
    digest = {
        "as_of": as_of,
        "rows": len(frame),
        "columns": list(frame.columns),
        "sha256": hashlib.sha256(canonical).hexdigest(),
    }
    return digest, frame.customer_id.astype(str).tolist()


def http_answers(home: Path, work: Path, customers: list[str]) -> dict:
    """Start `tierwise serve` on a free port and record its answers for `customers`."""
    import httpx

    port = free_port()
    log = (work / "serve.log").open("w")
    env = {**os.environ, "BENTOML_HOME": str(work / "bentoml")}
    process = subprocess.Popen(
        [str(BIN / "tierwise"), "--home", str(home), "serve", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((work / "serve.log").read_text()[-3000:])
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        with httpx.Client(base_url=url, timeout=30) as client:
            single = {}
            for customer in customers:
                response = client.post("/predict", json={"customer_id": customer})
                single[customer] = {"status": response.status_code, "body": response.json()}
            batch = client.post("/predict_batch", json={"customer_ids": customers})
        return {"predict": single, "predict_batch": {"status": batch.status_code, "body": batch.json()}}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def record(home: Path, out: Path, count: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="compare-answers-"))
    snapshot, customers = snapshot_digest(home, work)
    chosen = sorted(customers)[:count] + ["no-such-customer"]
    result = {"snapshot": snapshot, "customers": chosen, "http": http_answers(home, work, chosen)}
    out.write_text(json.dumps(result, indent=1, sort_keys=True))
    print(f"{out}: snapshot {snapshot['rows']:,} rows sha256 {snapshot['sha256'][:16]}…, {len(chosen)} ids")


def first_difference(a: object, b: object, path: str = "") -> str | None:
    if type(a) is not type(b):
        return f"{path or '/'}: {a!r} != {b!r}"
    if isinstance(a, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{path}/{key}: only in {'second' if key not in a else 'first'}"
            found = first_difference(a[key], b[key], f"{path}/{key}")
            if found:
                return found
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if a == b else f"{path}: {a!r} != {b!r}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--customers", type=int, default=20)
    parser.add_argument("--diff", nargs=2, type=Path, metavar=("FIRST", "SECOND"))
    args = parser.parse_args()
    if args.diff:
        first, second = (json.loads(p.read_text()) for p in args.diff)
        difference = first_difference(first, second)
        if difference:
            print(f"different: {difference}")
            sys.exit(1)
        print(
            f"identical: snapshot sha256 {first['snapshot']['sha256'][:16]}…, {len(first['customers'])} ids"
        )
        return
    if args.home is None or args.out is None:
        parser.error("give --home and --out, or --diff FIRST SECOND")
    record(args.home.resolve(), args.out, args.customers)


if __name__ == "__main__":
    main()
