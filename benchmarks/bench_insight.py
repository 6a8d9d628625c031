"""Personas and offers at scale: wall time and peak memory on a large home, against reference scans.

    .venv/bin/python -m benchmarks.bench_insight --home H [--as-of DATE] [--repeat 3]

H is a home with order lines, products and a feature snapshot (for 1M customers: `tierwise data synth
--customers 1000000` then `tierwise features build`). Each step runs in a fresh process
(`benchmarks.measure`), `--repeat` times; printed: the median wall time with its range, peak RSS, and
the ratio to its reference measured in the same run:

- personas (fit over k = 3..8 on a sample, then assign every customer) against reading the habit
  columns of the snapshot (what any persona method must read);
- offers (association rules, peers, ranking, top 5 per customer) against the scan every recommender
  over lines needs: distinct (customer, order, category) of the year.

Targets (issue #14): each under 2 minutes and 4 GiB for 1M customers.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from benchmarks.measure import Measurement, measure


def read_habits(home: str, day: str) -> int:
    """Reference: the habit columns of the snapshot, read."""
    from datetime import date

    from features.settings import Settings
    from training.personas import HABITS

    settings = Settings.resolve(home)
    frame = settings.feature_snapshots.read(date.fromisoformat(day), ["customer_id", *HABITS])
    return len(frame)


def personas(home: str, day: str, out: str) -> dict:
    """Fit personas (k = 3..8) on the snapshot, assign every customer, keep the assignment for `offers`."""
    from datetime import date

    import pandas as pd

    from features.settings import Settings
    from training.personas import HABITS, fit_personas

    settings = Settings.resolve(home)
    frame = settings.feature_snapshots.read(date.fromisoformat(day), ["customer_id", *HABITS])
    model = fit_personas(frame)
    pd.DataFrame(
        {"customer_id": frame.customer_id, "persona": model.name_of(model.assign(frame))}
    ).to_parquet(out)
    return {"customers": len(frame), "k": len(model.ids), "silhouette": round(model.silhouette, 3)}


def scan_lines(home: str, day: str) -> int:
    """Reference: distinct (customer, order, category) of the year before `day`."""
    from datetime import date, timedelta

    from features.live_data import open_live_data
    from features.settings import Settings
    from training.offers import bought_sql

    as_of = date.fromisoformat(day)
    con = open_live_data(Settings.resolve(home))
    return int(
        con.execute(f"SELECT count(*) FROM ({bought_sql(as_of - timedelta(days=365), as_of)})").fetchall()[0][
            0
        ]
    )


def offers(home: str, day: str, personas_file: str) -> dict:
    """Rules, peers and the top 5 offers of every customer (tiers: classic lifecycle, from history,
    reading only the snapshot columns they need, as the scoring job has the snapshot in memory)."""
    import time
    from datetime import date

    import pandas as pd

    from features.live_data import open_live_data
    from features.settings import Settings
    from tiering import assign_tiers, load_policy, required_columns
    from training import offers as offer_model

    settings = Settings.resolve(home)
    as_of = date.fromisoformat(day)
    policy = load_policy("lifecycle")
    features = settings.feature_snapshots.read(as_of, required_columns(policy, classic=True))
    tiers = assign_tiers(features, policy, classic=True)[["customer_id", "tier"]]
    peers = tiers.merge(pd.read_parquet(personas_file), on="customer_id")
    peers["tier_above"] = peers.tier.map(policy.tier_above)
    del features
    started = time.perf_counter()
    con = open_live_data(settings)
    offer_model.prepare(con, as_of)
    prepared = time.perf_counter()
    ranked = offer_model.rank_offers(con, peers)
    return {
        "customers": int(ranked.customer_id.nunique()),
        "offers": len(ranked),
        "prepare_s": round(prepared - started, 1),
        "rank_s": round(time.perf_counter() - prepared, 1),
    }


def summary(label: str, runs: list[Measurement], reference: list[Measurement] | None = None) -> str:
    seconds = [m.seconds for m in runs]
    median = statistics.median(seconds)
    text = (
        f"{label:<44} {median:8.1f} s ({min(seconds):.1f}–{max(seconds):.1f})  "
        f"peak {max(m.peak_mb for m in runs) / 1024:5.2f} GiB"
    )
    if reference:
        text += f"  {median / statistics.median(m.seconds for m in reference):5.1f}x reference"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True)
    parser.add_argument("--as-of", help="feature snapshot date (default: the latest)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from features.settings import Settings

    day = args.as_of or Settings.resolve(args.home).feature_snapshots.choose().isoformat()
    target = "benchmarks.bench_insight:"
    with tempfile.TemporaryDirectory() as work:
        assigned = str(Path(work) / "personas.parquet")
        read = [measure(target + "read_habits", args.home, day) for _ in range(args.repeat)]
        fitted = [measure(target + "personas", args.home, day, assigned) for _ in range(args.repeat)]
        print(f"home {args.home}, snapshot {day}: {fitted[0].result}", flush=True)
        print(summary("reference: read the habit columns", read), flush=True)
        print(summary("personas: fit k = 3..8, assign everyone", fitted, read), flush=True)
        scans = [measure(target + "scan_lines", args.home, day) for _ in range(args.repeat)]
        ranked = [measure(target + "offers", args.home, day, assigned) for _ in range(args.repeat)]
        print(f"lines scanned: {scans[0].result:,} (customer, order, category)")
        print("offers:", "; ".join(str(m.result) for m in ranked))
        print(summary("reference: scan the year's (customer, order, category)", scans), flush=True)
        print(summary("offers: rules, peers, top 5 for everyone", ranked, scans), flush=True)


if __name__ == "__main__":
    main()
