"""Run one step in a fresh Python process and report its wall time and peak memory (of the process,
and of the process with the programs it starts, such as Spark's JVM).

A fresh process per step makes peak RSS mean "this step", not "everything the benchmark did so far".
The step is a module-level function named as `module:function`; its return value must be JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

_RUNNER = """
import json, resource, sys, threading, time, importlib
import psutil
module, function = sys.argv[1].split(":")
args = json.loads(sys.argv[2])
fn = getattr(importlib.import_module(module), function)
tree_peak = [0]
def sample():
    me = psutil.Process()
    while True:
        rss = 0
        for process in [me, *me.children(recursive=True)]:
            try:
                rss += process.memory_info().rss
            except psutil.Error:
                pass
        tree_peak[0] = max(tree_peak[0], rss)
        time.sleep(0.2)
threading.Thread(target=sample, daemon=True).start()
start = time.perf_counter()
result = fn(*args)
seconds = time.perf_counter() - start
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
tree_mb = max(peak_mb, tree_peak[0] / 2**20)
print("\\n@@RESULT@@" + json.dumps({"seconds": seconds, "peak_mb": peak_mb, "tree_peak_mb": tree_mb, "result": result}, default=str))
"""


@dataclass(frozen=True)
class Measurement:
    seconds: float
    peak_mb: float
    result: Any
    #: Peak of the summed RSS of the child and its own children (Spark's JVM, say), sampled every 0.2 s.
    tree_peak_mb: float = 0.0


def measure(target: str, *args: Any) -> Measurement:
    """Time `target(*args)` (imports excluded) in a child process; peak RSS covers the whole child."""
    completed = subprocess.run(
        [sys.executable, "-c", _RUNNER, target, json.dumps(list(args), default=str)],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{target} failed:\n{completed.stderr[-4000:]}")
    payload = json.loads(completed.stdout.rsplit("@@RESULT@@", 1)[1])
    return Measurement(payload["seconds"], payload["peak_mb"], payload["result"], payload["tree_peak_mb"])


def row(label: str, m: Measurement, rows: int | None = None, reference: Measurement | None = None) -> str:
    """One printed line: seconds, rows/s, peak memory and the ratio to the reference."""
    parts = [f"{label:<52} {m.seconds:8.2f} s", f"peak {m.peak_mb:8.0f} MB"]
    if rows:
        parts.append(f"{rows / m.seconds:12,.0f} rows/s")
    if reference:
        parts.append(f"{m.seconds / reference.seconds:6.1f}x reference")
    return "  ".join(parts)
