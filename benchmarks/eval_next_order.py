"""The next-order model against BG/NBD and the customer's own rhythm, over rolling origins on Complete Journey.

    .venv/bin/python -m benchmarks.eval_next_order --home H [--as-of 2018-01-02] [--horizon 92]
        [--origins 4] [--every 28]

The cutoffs are those of `tierwise backtest --rolling` (README: `--as-of 2018-01-02 --horizon 92
--rolling 4 --every 28`): each origin D reads no order at or after D, trains on the weekly cutoffs of
`training.backtest_plan.plan` and tests on D - H, the last cutoff whose horizon has ended by D.
Features come from Feast (the churn feature service: every model's service holds every view). A
home without data gets Complete Journey imported; missing feature snapshots are built (and kept).

Scorers: the model with Platt scaling (what `fit_next_order` returns), the same booster uncalibrated,
the same booster with Platt refit by `recalibrate` on the cutoff 35 days before the test cutoff
(35-day labels, all known before the test cutoff, so nothing leaks), BG/NBD fitted on the orders before the test cutoff, and the own mean interval minus days since the
last order (a date only). Printed: the mean ± standard deviation over the origins of each metric of
`training.next_order.next_order_metrics`, plus `mae_days_common`, the MAE on the customers who
ordered and got a date from every scorer (the plain MAE of each scorer is over its own answered rows).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from datetime import date, timedelta

import numpy as np
import pandas as pd

from features import feature_store
from features.catalog import FEATURES_BY_NAME
from features.live_data import open_live_data
from features.settings import Settings
from features.snapshots import capabilities, data_period
from pipelines.next_order import orders_before
from training.backtest_plan import plan
from training.labels import compute_labels
from training.next_order import (
    LABEL,
    bgnbd_answers,
    fit_next_order,
    next_order_metrics,
    own_interval_days,
    recalibrate,
)

SERVICE = "churn"
SCORERS = ("model (Platt)", "model (raw)", "model (recent Platt)", "BG/NBD", "own interval")
#: The recalibration cutoff lies this many days before the test cutoff, its labels that long.
RECENT_DAYS = 35


def ensure_data(settings: Settings) -> None:
    """Import Complete Journey into an empty home."""
    if not (settings.data_dir / "tables").exists():
        from pipelines.import_data import import_completejourney

        import_completejourney(settings)


def labelled(settings: Settings, cutoffs: list[date], horizon: int, read_until: date) -> pd.DataFrame:
    """Feast features and labels at `cutoffs` (snapshots built where missing)."""
    from pipelines.build_features import build

    con = open_live_data(settings)
    missing = sorted(set(cutoffs) - set(settings.feature_snapshots.dates()))
    if missing:
        build(settings, missing)
    labels = compute_labels(con, cutoffs, horizon, read_until, with_categories=capabilities(con).products)
    return feature_store.training_frame(settings, labels, SERVICE)


def examples(settings: Settings, origin: date, horizon: int) -> tuple[pd.DataFrame, pd.DataFrame, date]:
    """Training and test examples (features from Feast, labels) of one origin, and its test cutoff."""
    the_plan = plan(data_period(open_live_data(settings)).first_order.date(), origin, horizon)
    frame = labelled(settings, [*the_plan.train, the_plan.test], horizon, origin)
    days = frame["event_timestamp"].dt.date
    train = frame[days.isin(set(the_plan.train)).to_numpy()].reset_index(drop=True)
    test = frame[(days == the_plan.test).to_numpy()].reset_index(drop=True)
    return train, test, the_plan.test


def evaluate_origin(settings: Settings, origin: date, horizon: int) -> list[dict]:
    """Fit on the origin's training cutoffs, score every scorer on its test cutoff; one row per metric."""
    started = time.perf_counter()
    train, test, test_day = examples(settings, origin, horizon)
    names = [c for c in train.columns if c in FEATURES_BY_NAME]
    model = fit_next_order(train, names, horizon)
    recent = labelled(settings, [test_day - timedelta(days=RECENT_DAYS)], RECENT_DAYS, test_day)
    answers = {
        "model (Platt)": model.predict(test),
        "model (raw)": dataclasses.replace(model, calibration=None).predict(test),
        "model (recent Platt)": recalibrate(model, recent, RECENT_DAYS).predict(test),
        "BG/NBD": bgnbd_answers(
            orders_before(open_live_data(settings), test_day),
            test["customer_id"],
            pd.Timestamp(test_day, tz="UTC"),
            horizon,
        ),
        "own interval": pd.DataFrame({"expected_next_order_days": own_interval_days(test)}),
    }
    actual = test[LABEL].to_numpy(dtype=float)
    common = ~np.isnan(actual)
    for frame in answers.values():
        common &= frame["expected_next_order_days"].notna().to_numpy()
    rows = []
    for scorer, frame in answers.items():
        median = frame["expected_next_order_days"].to_numpy(dtype=float)
        scores = next_order_metrics(actual, median, frame.get("p_order_7d"), frame.get("p_order_30d"))
        scores["mae_days_common"] = float(np.abs(median[common] - actual[common]).mean())
        rows += [{"origin": origin, "scorer": scorer, "metric": k, "value": v} for k, v in scores.items()]
    print(
        f"origin {origin}: test cutoff {test_day}, {len(train):,} training examples, {len(test):,} test "
        f"customers ({int(np.isnan(actual).sum())} without an order in {horizon} days), {model.trees} trees, "
        f"Platt {model.calibration}, {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    return rows


def summary_table(rows: list[dict]) -> pd.DataFrame:
    """Metric by scorer: mean ± standard deviation over the origins."""
    table = pd.DataFrame(rows)
    grouped = table.groupby(["metric", "scorer"], sort=False)["value"].agg(["mean", "std", "count"])
    cells = grouped.apply(lambda r: f"{r['mean']:.3f} ± {r['std']:.3f}", axis=1).unstack("scorer")
    return cells.reindex(columns=list(SCORERS)).fillna("–")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", required=True, help="a home with Complete Journey (imported if empty)")
    parser.add_argument("--as-of", default="2018-01-02", help="the latest origin")
    parser.add_argument("--horizon", type=int, default=92)
    parser.add_argument("--origins", type=int, default=4)
    parser.add_argument("--every", type=int, default=28, help="days between origins")
    args = parser.parse_args()
    settings = Settings.resolve(args.home)
    ensure_data(settings)
    feature_store.apply(settings)
    latest = date.fromisoformat(args.as_of)
    rows = []
    for k in range(args.origins):
        rows += evaluate_origin(settings, latest - timedelta(days=k * args.every), args.horizon)
    print(f"\nmean ± std over {args.origins} origins, horizon {args.horizon} days:")
    with pd.option_context("display.width", 200, "display.max_columns", 10):
        print(summary_table(rows).to_string())


if __name__ == "__main__":
    main()
