"""Evaluation metrics for the churn (probability) and customer-value (amount) models.

Why this module exists: every model and baseline in our modelling notes is compared on the same numbers,
so they are defined once, here, with the conventions written down. Value ranking follows Wang, Liu
& Miao (2019) and their code, google/lifetime_value `metrics.py`: normalized Gini from the gain
chart, and decile MAPE over 10 equal-count bins by prediction. Churn is judged on ranking (ROC and
PR AUC) and on calibration (Brier, ECE), because tiers are cut on probability levels, not ranks.

Conventions shared by all functions:
* inputs are 1-D array-likes of equal, non-zero length; `y_true` of a classifier holds 0/1;
* "by prediction" orders are stable: ties keep the input order (google's code leaves ties to
  pandas' sort, so results with tied predictions can differ from it in the last digits);
* equal-count bins are cut on the rank of the score (`np.array_split`), so tied scores never
  produce empty or merged bins, and bin sizes differ by at most one.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

Metric = Callable[[np.ndarray, np.ndarray], float]


def _pair(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs as 1-D float arrays of one non-zero length."""
    truth = np.asarray(y_true, dtype=float).ravel()
    pred = np.asarray(y_pred, dtype=float).ravel()
    if truth.size != pred.size:
        raise ValueError(f"y_true has {truth.size} values, the prediction {pred.size}")
    if truth.size == 0:
        raise ValueError("metrics need at least one value")
    return truth, pred


def _descending(score: np.ndarray) -> np.ndarray:
    """Indices that sort `score` from highest to lowest; ties keep the input order."""
    return np.argsort(-score, kind="stable")


def _equal_count_bins(score: np.ndarray, bins: int) -> list[np.ndarray]:
    """Index arrays of `bins` equal-count groups, from the lowest score to the highest (none empty)."""
    order = np.argsort(score, kind="stable")
    return [chunk for chunk in np.array_split(order, bins) if chunk.size]


def _gain(y_true: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Cumulative share of the total of `y_true`, customers taken from the highest score down."""
    return np.cumsum(y_true[_descending(score)]) / y_true.sum()


def _raw_gini(y_true: np.ndarray, score: np.ndarray) -> float:
    """2 * mean(gain) - 1, as `gini_from_gain` in google/lifetime_value."""
    return float(2.0 * _gain(y_true, score).mean() - 1.0)


def normalized_gini(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """Gini of the prediction's gain chart divided by the Gini of a perfect ranking.

    Customers are ranked by prediction, descending; gain is the cumulative share of the actual
    value; raw Gini = 2 * mean(gain) - 1; normalized = raw(prediction) / raw(actual). 1 is a perfect
    ranking, about 0 a random one, negative a ranking worse than random. Only the order of
    `y_pred` matters, not its level.

    Args:
        y_true: Actual values (non-negative, e.g. spend in the horizon).
        y_pred: Predicted values or any score.

    Returns:
        The normalized Gini; NaN if the actual values sum to zero or are all equal.
    """
    truth, pred = _pair(y_true, y_pred)
    if truth.sum() == 0:
        return float("nan")
    perfect = _raw_gini(truth, truth)
    return _raw_gini(truth, pred) / perfect if perfect != 0 else float("nan")


def decile_table(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> pd.DataFrame:
    """Mean prediction and mean actual in 10 equal-count bins by prediction.

    Args:
        y_true: Actual values.
        y_pred: Predicted values.

    Returns:
        Columns `decile` (1 = lowest predictions, 10 = highest), `mean_predicted`, `mean_actual`,
        `count`; fewer than 10 rows when there are fewer than 10 customers.
    """
    truth, pred = _pair(y_true, y_pred)
    rows = [
        {"decile": i, "mean_predicted": pred[idx].mean(), "mean_actual": truth[idx].mean(), "count": idx.size}
        for i, idx in enumerate(_equal_count_bins(pred, 10), start=1)
    ]
    return pd.DataFrame(rows, columns=["decile", "mean_predicted", "mean_actual", "count"])


def decile_mape(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """Mean over the 10 prediction deciles of |mean prediction - mean actual| / mean actual.

    Measures whether the *level* of predictions is right group by group (a ranking metric cannot).
    Bins whose mean actual is zero are skipped, since the relative error is undefined there; this
    differs from google/lifetime_value `decile_stats`, which would return inf for such a bin.

    Args:
        y_true: Actual values.
        y_pred: Predicted values.

    Returns:
        The decile MAPE as a fraction (0.1 = 10%); NaN if every bin has zero actual mean.
    """
    table = decile_table(y_true, y_pred)
    table = table[table["mean_actual"] != 0]
    if table.empty:
        return float("nan")
    errors = (table["mean_predicted"] - table["mean_actual"]).abs() / table["mean_actual"]
    return float(errors.mean())


def top_decile_capture(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """Share of the total actual value held by the top 10% of customers by prediction.

    The top group has ceil(n / 10) customers (at least one).

    Args:
        y_true: Actual values (non-negative), or 0/1 outcomes for the share of positives captured.
        y_pred: Predicted values or any score.

    Returns:
        The captured share in [0, 1]; NaN if the actual values sum to zero.
    """
    truth, pred = _pair(y_true, y_pred)
    if truth.sum() == 0:
        return float("nan")
    top = _descending(pred)[: int(np.ceil(truth.size / 10))]
    return float(truth[top].sum() / truth.sum())


def gain_curve(y_true: npt.ArrayLike, score: npt.ArrayLike) -> pd.DataFrame:
    """Cumulative gain chart: share of positives (or value) captured by the top share of customers.

    Args:
        y_true: 0/1 outcomes or non-negative values.
        score: Ranking score; customers are taken from the highest score down.

    Returns:
        Columns `share_customers` and `share_captured`, starting at (0, 0) and ending at (1, 1),
        one row per customer after the origin. `share_captured` is NaN if `y_true` sums to zero.
    """
    truth, ranking = _pair(y_true, score)
    total = truth.sum()
    captured = np.cumsum(truth[_descending(ranking)]) / total if total != 0 else np.full(truth.size, np.nan)
    return pd.DataFrame(
        {
            "share_customers": np.arange(truth.size + 1) / truth.size,
            "share_captured": np.concatenate([[0.0], captured]),
        }
    )


def calibration_table(y_true: npt.ArrayLike, p: npt.ArrayLike, bins: int = 10) -> pd.DataFrame:
    """Mean predicted probability against the observed rate in equal-count bins of `p`.

    Equal-count (quantile) bins rather than equal-width ones: churn probabilities crowd near the
    5.8% base rate on Complete Journey, so equal-width bins would put nearly every customer in the first
    bin and leave the others almost empty. The modelling notes do not record which binning its ECE used.

    Args:
        y_true: 0/1 outcomes.
        p: Predicted probabilities of outcome 1.
        bins: Number of bins (fewer rows if there are fewer customers).

    Returns:
        Columns `bin` (1 = lowest probabilities), `mean_predicted`, `observed_rate`, `count`.
    """
    truth, prob = _pair(y_true, p)
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    rows = [
        {"bin": i, "mean_predicted": prob[idx].mean(), "observed_rate": truth[idx].mean(), "count": idx.size}
        for i, idx in enumerate(_equal_count_bins(prob, bins), start=1)
    ]
    return pd.DataFrame(rows, columns=["bin", "mean_predicted", "observed_rate", "count"])


def expected_calibration_error(y_true: npt.ArrayLike, p: npt.ArrayLike, bins: int = 10) -> float:
    """Count-weighted mean over bins of |mean predicted probability - observed rate|.

    Uses the equal-count bins of `calibration_table`. A perfectly calibrated model scores about 0
    (plus sampling noise of order sqrt(rate / bin size)); probabilities that are all 0.2 too high
    score about 0.2.

    Args:
        y_true: 0/1 outcomes.
        p: Predicted probabilities of outcome 1.
        bins: Number of equal-count bins.

    Returns:
        The ECE, in probability units.
    """
    table = calibration_table(y_true, p, bins)
    gaps = (table["mean_predicted"] - table["observed_rate"]).abs()
    return float(np.average(gaps, weights=table["count"]))


def _metric_or_nan(metric: Metric, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The metric's value, or NaN where it is undefined for this sample (e.g. AUC with one class).

    sklearn either raises ValueError or warns and returns NaN there, depending on the metric and
    version; both become a silent NaN, which callers report or drop.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            return float(metric(y_true, y_pred))
    except ValueError:
        return float("nan")


def bootstrap_interval(
    metric: Metric,
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike,
    n_boot: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[float, float]:
    """Percentile bootstrap interval of a metric, resampling customers with replacement.

    Resamples on which the metric is undefined (it raises ValueError or returns NaN, e.g. an AUC on a
    resample with one class) are dropped. With ~140 churners the band is wide (our Complete Journey measurements: AUC
    +-0.02), so report it next to every point estimate.

    Args:
        metric: Function of (y_true, y_pred) returning a float, e.g. `normalized_gini`.
        y_true: Actual values or outcomes.
        y_pred: Predictions.
        n_boot: Number of bootstrap resamples.
        seed: Seed of the resampling generator (same seed, same interval).
        alpha: 1 - coverage; 0.05 gives a 95% interval.

    Returns:
        (lower, upper) quantiles of the resampled metric; (NaN, NaN) if no resample was usable.
    """
    truth, pred = _pair(y_true, y_pred)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    rng = np.random.default_rng(seed)
    values = np.empty(n_boot)
    for i in range(n_boot):
        idx = rng.integers(0, truth.size, size=truth.size)
        values[i] = _metric_or_nan(metric, truth[idx], pred[idx])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def classification_metrics(y_true: npt.ArrayLike, p: npt.ArrayLike) -> dict[str, float]:
    """The churn model's report card.

    Args:
        y_true: 0/1 outcomes (1 = churned).
        p: Predicted probabilities of churn.

    Returns:
        `roc_auc`; `pr_auc` (average precision, sklearn's step-wise area under the PR curve);
        `brier` (mean squared error of p); `ece` (10 equal-count bins); `base_rate` (share of 1s).
        AUCs are NaN when `y_true` has a single class.
    """
    truth, prob = _pair(y_true, p)
    return {
        "roc_auc": _metric_or_nan(skm.roc_auc_score, truth, prob),
        "pr_auc": _metric_or_nan(skm.average_precision_score, truth, prob) if truth.any() else float("nan"),
        "brier": float(skm.brier_score_loss(truth, prob)),
        "ece": expected_calibration_error(truth, prob),
        "base_rate": float(truth.mean()),
    }


def _spearman(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Spearman rank correlation; NaN if either side is constant."""
    if np.ptp(y_true) == 0 or np.ptp(y_pred) == 0:
        return float("nan")
    return float(stats.spearmanr(y_true, y_pred).statistic)


def regression_metrics(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> dict[str, float]:
    """The customer-value model's report card.

    Args:
        y_true: Actual values (e.g. spend in the horizon).
        y_pred: Predicted values, in the same unit.

    Returns:
        `normalized_gini`, `spearman`, `decile_mape`, `top_decile_capture` (see their functions);
        `mae` (mean absolute error); `predicted_total_ratio` (sum of predictions / sum of actuals,
        1.0 = right total level; NaN if the actuals sum to zero).
    """
    truth, pred = _pair(y_true, y_pred)
    total = truth.sum()
    return {
        "normalized_gini": normalized_gini(truth, pred),
        "spearman": _spearman(truth, pred),
        "decile_mape": decile_mape(truth, pred),
        "top_decile_capture": top_decile_capture(truth, pred),
        "mae": float(skm.mean_absolute_error(truth, pred)),
        "predicted_total_ratio": float(pred.sum() / total) if total != 0 else float("nan"),
    }
