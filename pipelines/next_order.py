"""Train the next-order model (`training.next_order`): when will each customer order next.

The same run shape as the three models (`pipelines.train`): examples from Feast's point-in-time join
at the plan's cutoffs, a model fitted on the training cutoffs and judged on the test cutoff against
BG/NBD on the same customers, then refitted on every cutoff up to the horizon before `as_of` for
deployment. The run, its metrics (the model's and BG/NBD's) and the model go to MLflow as
`next_order`; it becomes champion when its P(order within 30 days) ranks the test customers better
than BG/NBD's (ROC-AUC) and, if there is a champion, no worse than the champion's on the same rows.
`tierwise score` then writes each customer's P(order within 7 and 30 days) and expected next-order
date into the tier snapshot, and the service answers them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd

from features import feature_store
from features.catalog import FEATURES_BY_NAME
from features.live_data import open_live_data
from features.settings import Settings
from features.snapshots import capabilities, data_period
from pipelines.home_lock import writes_home
from pipelines.train import ensure_snapshots, labels_on_engine
from training import registry
from training.backtest_plan import plan
from training.next_order import LABEL, bgnbd_answers, fit_next_order, next_order_metrics

#: Examples come from the churn feature service: every model's service holds every feature view.
SERVICE = "churn"
PROMOTION_METRIC = "auc_30d"


@dataclass(frozen=True)
class NextOrderReport:
    as_of: date
    version: int | None
    promoted: bool
    reason: str
    test_metrics: dict[str, float]
    baseline_metrics: dict[str, float]


@writes_home
def train_next_order(
    settings: Settings,
    as_of: date | None = None,
    horizon_days: int = 90,
    step_days: int = 7,
    register: bool = True,
) -> NextOrderReport:
    """Fit, judge against BG/NBD, refit for deployment, register and (if it wins) promote."""
    con = open_live_data(settings)
    period = data_period(con)
    as_of = as_of or period.last_order.date() + timedelta(days=1)
    the_plan = plan(period.first_order.date(), as_of, horizon_days, step_days)
    ensure_snapshots(settings, the_plan.all_cutoffs)
    feature_store.apply(settings)
    labels = labels_on_engine(
        settings, con, the_plan.all_cutoffs, horizon_days, as_of, capabilities(con).products
    )
    frame = feature_store.training_frame(settings, labels, SERVICE)
    names = [c for c in frame.columns if c in FEATURES_BY_NAME and frame[c].notna().any()]
    days = frame["event_timestamp"].dt.date
    test = frame[(days == the_plan.test).to_numpy()].reset_index(drop=True)
    model = fit_next_order(frame[days.isin(set(the_plan.train)).to_numpy()], names, horizon_days)
    orders = orders_before(con, the_plan.test)
    baseline = bgnbd_answers(orders, test["customer_id"], pd.Timestamp(the_plan.test, tz="UTC"), horizon_days)
    actual = test[LABEL].to_numpy(dtype=float)
    scores = _metrics(actual, model.predict(test))
    base_scores = _metrics(actual, baseline)
    deployed = fit_next_order(frame[days.isin(set(the_plan.deploy_train)).to_numpy()], names, horizon_days)
    if not register:
        return NextOrderReport(as_of, None, False, "not registered", scores, base_scores)
    registry.configure(settings)
    current = registry.load_next_order()
    promoted, reason = _decide(scores, base_scores, current, test, actual)
    tags = {
        "as_of": as_of.isoformat(),
        "horizon_days": str(horizon_days),
        "test_cutoff": the_plan.test.isoformat(),
    }
    with registry.run(f"next_order as of {as_of}", {"tierwise.model": registry.NEXT_ORDER}):
        registry.log_params({**tags, "features": len(names), "trees": deployed.trees, "grid": deployed.grid})
        registry.log_metrics({f"test_{k}": v for k, v in scores.items()})
        registry.log_metrics({f"bgnbd_{k}": v for k, v in base_scores.items()})
        uri = registry.log_next_order(deployed)
        version = registry.register(
            registry.NEXT_ORDER, uri, tags, description=_description(scores, base_scores)
        )
        if promoted:
            registry.promote(registry.NEXT_ORDER, version)
        registry.set_tags({"registered_version": version, "promoted": promoted, "promotion_reason": reason})
    return NextOrderReport(as_of, version, promoted, reason, scores, base_scores)


def _metrics(actual: np.ndarray, answers: pd.DataFrame) -> dict[str, float]:
    median = answers["expected_next_order_days"].to_numpy(dtype=float)
    return next_order_metrics(actual, median, answers["p_order_7d"], answers["p_order_30d"])


def _decide(
    scores: dict[str, float],
    base: dict[str, float],
    current: tuple | None,
    test: pd.DataFrame,
    actual: np.ndarray,
) -> tuple[bool, str]:
    """Promote when the challenger ranks the test customers better than BG/NBD and no worse than the
    champion on the same rows (`PROMOTION_METRIC`)."""
    mine, theirs = scores[PROMOTION_METRIC], base[PROMOTION_METRIC]
    if not mine > theirs:
        return (
            False,
            f"{PROMOTION_METRIC} {mine:.3f} does not beat BG/NBD's {theirs:.3f}: registered, not promoted",
        )
    if current is not None:
        champion = _metrics(actual, current[0].predict(test))[PROMOTION_METRIC]
        if mine < champion:
            return (
                False,
                f"{PROMOTION_METRIC} {mine:.3f} below the champion's {champion:.3f} on the same customers",
            )
    return True, f"{PROMOTION_METRIC} {mine:.3f} beats BG/NBD's {theirs:.3f}"


def _description(scores: dict[str, float], base: dict[str, float]) -> str:
    return (
        "P(next order within t days) for t up to the horizon (LightGBM over stacked horizons, censoring "
        f"respected); expected date = median. Test cutoff: AUC(30 d) {scores['auc_30d']:.3f} vs BG/NBD "
        f"{base['auc_30d']:.3f}; MAE {scores['mae_days']:.1f} vs {base['mae_days']:.1f} days."
    )


def orders_before(con: duckdb.DuckDBPyConnection, day: date) -> pd.DataFrame:
    """customer_id, ordered_at and amount of every order before `day` (what BG/NBD's next-order
    answers read)."""
    return con.execute(
        "SELECT customer_id, ordered_at, amount FROM orders WHERE ordered_at < CAST(? AS TIMESTAMPTZ)",
        [day.isoformat()],
    ).df()
