"""Buy-till-you-die baselines: BG/NBD for repeat purchases and Gamma-Gamma for spend, in closed form.

Why this module exists: the LightGBM churn and value models have to beat the classic probabilistic
models of customer-base analysis, so those baselines must be cheap, transparent and checkable
against the published numbers. Everything here is a short numpy/scipy transcription of the
formulas in

* Fader, Hardie & Lee (2005), "'Counting Your Customers' the Easy Way: An Alternative to the
  Pareto/NBD Model", Marketing Science 24(2) -- BG/NBD likelihood and conditional
  expectation -- and the note "Computing P(alive) Using the BG/NBD Model" (2008);
* Fader, Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves for Customer Base Analysis",
  JMR 42(4), and the note "The Gamma-Gamma Model of Monetary Value" (2013),

with no BTYD library: each model is a few lines that can be checked by reading them against
the papers. Time is measured in periods of `period_days` (weeks by default, as in the papers); the
`t`, `recency` and `T` passed to one set of parameters must use the units they were fitted in.

Churn score: use `prob_no_purchase` (P(no order in the horizon)), not 1 - `prob_alive`; see
`prob_no_purchase` for why (we measured AUC 0.874 against 0.669 on Complete Journey).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import optimize, special

from features.errors import InputError

ORDER_COLUMNS = ("customer_id", "ordered_at", "amount")

#: Log-parameters are kept in this box so that a wild optimizer step cannot overflow exp().
_LOG_BOUND = 15.0


@dataclass(frozen=True)
class BgNbdParams:
    """BG/NBD parameters: purchase rate lambda ~ Gamma(shape r, rate alpha), dropout p ~ Beta(a, b).

    `alpha` is in the time unit of the data it was fitted on (CDNOW: weeks).
    """

    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True)
class GammaGammaParams:
    """Gamma-Gamma parameters: spend per transaction ~ Gamma(p, nu), nu ~ Gamma(shape q, rate v).

    The population mean spend per transaction is p * v / (q - 1) (finite only for q > 1).
    """

    p: float
    q: float
    v: float


def _float_arrays(*values: npt.ArrayLike) -> list[np.ndarray]:
    """Broadcast scalars and array-likes to float arrays of one common shape."""
    return list(np.broadcast_arrays(*(np.asarray(value, dtype=float) for value in values)))


def _check_rfm(frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> None:
    """Reject summaries the BG/NBD cannot describe (an error here is a bug in the summary)."""
    if np.any(~np.isfinite(frequency) | ~np.isfinite(recency) | ~np.isfinite(T)):
        raise InputError("frequency, recency and T must be finite")
    if np.any(frequency < 0) or np.any(frequency != np.round(frequency)):
        raise InputError("frequency must be a non-negative whole number of repeat purchases")
    if np.any(recency < 0) or np.any(recency > T + 1e-9):
        raise InputError("recency must lie in [0, T]")
    if np.any((frequency == 0) & (recency != 0)):
        raise InputError("recency must be 0 for customers without a repeat purchase (frequency 0)")


def bgnbd_log_likelihood(
    params: BgNbdParams, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
) -> np.ndarray:
    """Per-customer BG/NBD log-likelihood (Fader, Hardie & Lee 2005).

    L = B(a, b+x)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+T)^(r+x))
        + [x > 0] B(a+1, b+x-1)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+t_x)^(r+x)),
    summed in log space with logaddexp so large x and T do not underflow.

    Args:
        params: Model parameters.
        frequency: Repeat purchases x.
        recency: Time t_x from the first to the last purchase.
        T: Time from the first purchase to the end of observation.

    Returns:
        log L for each customer, shaped like the broadcast inputs.
    """
    x, t_x, age = _float_arrays(frequency, recency, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    common = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) - special.betaln(a, b)
    still_alive = special.betaln(a, b + x) - (r + x) * np.log(alpha + age)
    x_repeat = np.maximum(x, 1.0)  # keeps betaln's arguments valid where the term is masked out
    dropped_out = special.betaln(a + 1.0, b + x_repeat - 1.0) - (r + x) * np.log(alpha + t_x)
    both = np.logaddexp(still_alive, np.where(x > 0, dropped_out, -np.inf))
    return common + both


def _unique_rows(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Distinct rows of the given columns and how often each occurs (the likelihood is a sum over rows)."""
    rows, counts = np.unique(np.column_stack(columns), axis=0, return_counts=True)
    return [rows[:, i] for i in range(rows.shape[1])], counts.astype(float)


def _maximize(neg_mean_ll: Callable[[np.ndarray], float], start: np.ndarray, model: str) -> np.ndarray:
    """Minimize a mean negative log-likelihood over log-parameters with L-BFGS-B; returns the parameters."""
    bounds = [(-_LOG_BOUND, _LOG_BOUND)] * len(start)
    result = optimize.minimize(neg_mean_ll, start, method="L-BFGS-B", bounds=bounds)
    if not result.success or not np.isfinite(result.fun):
        warnings.warn(f"{model} fit did not converge: {result.message}", RuntimeWarning, stacklevel=3)
    return np.exp(result.x)


def fit_bgnbd(frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike) -> BgNbdParams:
    """Fit the BG/NBD by maximum likelihood.

    The optimizer works on log-parameters (all four are positive) with L-BFGS-B and a start scaled to
    the data's time unit, so the same call works in days or weeks. Identical (x, t_x, T) rows are
    collapsed with weights first, which makes fitting large customer bases cheap.

    Args:
        frequency: Repeat purchases x per customer (see `rfm_summary`).
        recency: t_x per customer, in the same unit as T.
        T: Observation length per customer.

    Returns:
        The maximum-likelihood parameters; a RuntimeWarning is raised if the optimizer did not converge.

    Raises:
        InputError: if the summary is inconsistent (negative values, recency > T, recency without repeats).
    """
    x, t_x, age = _float_arrays(frequency, recency, T)
    _check_rfm(x, t_x, age)
    if x.size == 0:
        raise InputError("cannot fit the BG/NBD on no customers")
    (x, t_x, age), weights = _unique_rows(x.ravel(), t_x.ravel(), age.ravel())

    def neg_mean_ll(log_params: np.ndarray) -> float:
        params = BgNbdParams(*np.exp(log_params))
        return -float(np.sum(weights * bgnbd_log_likelihood(params, x, t_x, age)) / weights.sum())

    start = np.log([1.0, max(float(np.average(age, weights=weights)), 1e-3), 1.0, 1.0])
    return BgNbdParams(*(float(value) for value in _maximize(neg_mean_ll, start, "BG/NBD")))


def _log_dropout_odds(params: BgNbdParams, x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> np.ndarray:
    """log[P(dropped out) / P(alive)] = log(a/(b+x-1)) + (r+x) log((alpha+T)/(alpha+t_x)); -inf if x = 0."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x_repeat = np.maximum(x, 1.0)
    odds = np.log(a) - np.log(b + x_repeat - 1.0) + (r + x) * (np.log(alpha + age) - np.log(alpha + t_x))
    return np.where(x > 0, odds, -np.inf)


def prob_alive(
    params: BgNbdParams, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
) -> np.ndarray:
    """P(alive at T | x, t_x, T) = 1 / (1 + [x > 0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)).

    From Fader, Hardie & Lee's note "Computing P(alive) Using the BG/NBD Model". It is exactly 1 for
    customers without a repeat purchase, because the BG/NBD lets customers drop out only right after
    a purchase -- which is why 1 - P(alive) is a poor churn score (see `prob_no_purchase`).

    Args:
        params: Fitted parameters.
        frequency: Repeat purchases x.
        recency: t_x, in the unit the parameters were fitted in.
        T: Observation length, same unit.

    Returns:
        P(alive) per customer.
    """
    x, t_x, age = _float_arrays(frequency, recency, T)
    return special.expit(-_log_dropout_odds(params, x, t_x, age))


def expected_purchases(
    params: BgNbdParams,
    t: npt.ArrayLike,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
) -> np.ndarray:
    """E[purchases in (T, T+t] | x, t_x, T] (Fader, Hardie & Lee 2005).

    E = P(alive) * (a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)],
    z = t/(alpha+T+t). The bracket is evaluated through Euler's transformation,
    (1-z)^(r+x) 2F1(r+x, b+x; c; z) = (1-z)^(a-1) 2F1(a+b-1-r, a-1; c; z), whose first two arguments
    do not grow with x; that avoids the overflow of the direct form for heavy buyers (the "#NUM!"
    problem of Fader & Hardie's 2013 note). With x = t_x = T = 0 it is the unconditional E[X(t)] of a
    new customer. The formula is singular at a = 1 exactly.

    Args:
        params: Fitted parameters.
        t: Horizon length, in the unit the parameters were fitted in.
        frequency: Repeat purchases x.
        recency: t_x.
        T: Observation length.

    Returns:
        Expected number of purchases in the next t periods, per customer.
    """
    horizon, x, t_x, age = _float_arrays(t, frequency, recency, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    c = a + b + x - 1.0
    z = horizon / (alpha + age + horizon)
    survival_term = (1.0 - z) ** (a - 1.0) * special.hyp2f1(a + b - 1.0 - r, a - 1.0, c, z)
    return prob_alive(params, x, t_x, age) * c / (a - 1.0) * (1.0 - survival_term)


def prob_no_purchase(
    params: BgNbdParams,
    t: npt.ArrayLike,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
) -> np.ndarray:
    """P(no purchase in (T, T+t] | x, t_x, T): the BTYD churn score.

    = (1 - P(alive)) + P(alive) * ((alpha+T)/(alpha+T+t))^(r+x). A customer who has dropped out never
    buys again; one who is alive has, given the history, a purchase rate distributed
    Gamma(r+x, alpha+T), so the chance of no Poisson purchase in t is that Gamma's Laplace transform.

    Why not 1 - P(alive): the BG/NBD lets a customer drop out only right after a purchase, so
    P(alive) = 1 for every customer without a repeat purchase, however long ago their single purchase
    was. 1 - P(alive) therefore ranks all one-time buyers as the safest customers, while they are in
    fact among the likeliest to be gone. This score keeps the evidence of silence: a one-time buyer
    observed for a long T gets a low posterior rate and so a high P(no purchase). On Complete Journey
    it lifted the BG/NBD churn AUC from 0.669 to 0.874 on Complete Journey.

    Args:
        params: Fitted parameters.
        t: Horizon length, in the unit the parameters were fitted in.
        frequency: Repeat purchases x.
        recency: t_x.
        T: Observation length.

    Returns:
        Probability of no purchase in the horizon, per customer.
    """
    horizon, x, t_x, age = _float_arrays(t, frequency, recency, T)
    alive = prob_alive(params, x, t_x, age)
    log_silent_if_alive = (params.r + x) * (np.log(params.alpha + age) - np.log(params.alpha + age + horizon))
    return (1.0 - alive) + alive * np.exp(log_silent_if_alive)


def gamma_gamma_log_likelihood(
    params: GammaGammaParams, frequency: npt.ArrayLike, monetary_value: npt.ArrayLike
) -> np.ndarray:
    """Per-customer log-density of the mean spend m of x transactions under the Gamma-Gamma model.

    f(m | x) = G(px+q) / (G(px) G(q)) * v^q m^(px-1) x^(px) / (v + m x)^(px+q)
    (Fader & Hardie, "The Gamma-Gamma Model of Monetary Value"). Defined for x > 0 and m > 0.

    Args:
        params: Model parameters.
        frequency: Number of transactions averaged (repeat purchases x).
        monetary_value: Mean spend m of those transactions.

    Returns:
        log f(m | x) per customer.
    """
    x, m = _float_arrays(frequency, monetary_value)
    p, q, v = params.p, params.q, params.v
    px = p * x
    return (
        special.gammaln(px + q)
        - special.gammaln(px)
        - special.gammaln(q)
        + q * np.log(v)
        + (px - 1.0) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(v + m * x)
    )


def fit_gamma_gamma(frequency: npt.ArrayLike, monetary_value: npt.ArrayLike) -> GammaGammaParams:
    """Fit the Gamma-Gamma spend model by maximum likelihood on customers with repeat purchases.

    Only customers with frequency > 0 and monetary_value > 0 enter the likelihood: the model describes
    the mean of repeat transactions, which one-time buyers do not have, and its density is undefined
    for non-positive spend. Parameters are optimized in log space with L-BFGS-B. The model assumes
    spend is independent of frequency; check that correlation before relying on it.

    Args:
        frequency: Repeat purchases x per customer (see `rfm_summary`).
        monetary_value: Mean spend of the repeat purchases per customer.

    Returns:
        The maximum-likelihood parameters; a RuntimeWarning is raised if the optimizer did not converge.

    Raises:
        InputError: if fewer than two customers have a repeat purchase with positive spend.
    """
    x, m = _float_arrays(frequency, monetary_value)
    usable = (x > 0) & (m > 0) & np.isfinite(m)
    if usable.sum() < 2:
        raise InputError("the Gamma-Gamma fit needs at least two customers with repeat purchases")
    (x, m), weights = _unique_rows(x[usable], m[usable])

    def neg_mean_ll(log_params: np.ndarray) -> float:
        params = GammaGammaParams(*np.exp(log_params))
        return -float(np.sum(weights * gamma_gamma_log_likelihood(params, x, m)) / weights.sum())

    start = np.log([1.0, 2.0, float(np.average(m, weights=weights))])
    return GammaGammaParams(*(float(value) for value in _maximize(neg_mean_ll, start, "Gamma-Gamma")))


def expected_average_spend(
    params: GammaGammaParams, frequency: npt.ArrayLike, monetary_value: npt.ArrayLike
) -> np.ndarray:
    """E[spend per transaction | x, m] = p (v + x m) / (p x + q - 1).

    A credibility-weighted blend of the population mean p v / (q - 1) and the customer's own mean m,
    with weight p x / (p x + q - 1) on m. For frequency 0 it is the population mean (m is ignored).

    Args:
        params: Fitted parameters (q > 1 for a finite population mean).
        frequency: Repeat purchases x.
        monetary_value: Mean spend of the repeat purchases (ignored where x = 0).

    Returns:
        Expected average spend per future transaction, per customer.
    """
    x, m = _float_arrays(frequency, monetary_value)
    p, q, v = params.p, params.q, params.v
    own_total = np.where(x > 0, x * m, 0.0)
    return p * (v + own_total) / (p * x + q - 1.0)


def _utc_timestamp(as_of: pd.Timestamp) -> pd.Timestamp:
    as_of = pd.Timestamp(as_of)
    if as_of.tzinfo is None:
        raise InputError(f"as_of must be timezone-aware (UTC), got {as_of}")
    return as_of.tz_convert("UTC")


def _purchase_days(orders: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Spend per (customer, UTC calendar day) for orders strictly before as_of, sorted by day."""
    missing = [column for column in ORDER_COLUMNS if column not in orders.columns]
    if missing:
        raise InputError(f"orders lack the columns {missing}; required: {list(ORDER_COLUMNS)}")
    ordered_at = orders["ordered_at"]
    if not isinstance(ordered_at.dtype, pd.DatetimeTZDtype):
        raise InputError("orders.ordered_at must be a timezone-aware (UTC) timestamp column")
    before = ordered_at < as_of
    days = pd.DataFrame(
        {
            "customer_id": orders.loc[before, "customer_id"],
            "day": ordered_at[before].dt.tz_convert("UTC").dt.floor("D"),
            "amount": orders.loc[before, "amount"].astype(float),
        }
    )
    return (
        days.groupby(["customer_id", "day"], as_index=False)["amount"]
        .sum()
        .sort_values(["customer_id", "day"])
    )


def rfm_summary(orders: pd.DataFrame, as_of: pd.Timestamp, period_days: float = 7.0) -> pd.DataFrame:
    """Per-customer BTYD inputs (frequency, recency, T, monetary_value) from an orders table.

    Follows the `lifetimes` convention: orders are grouped into UTC calendar days, so several orders
    on one day count as one purchase whose spend is their sum. Only orders strictly before `as_of`
    are used; the input is not modified.

    Args:
        orders: One row per order; required columns `customer_id`, `ordered_at` (timezone-aware),
            `amount` (order spend).
        as_of: Cutoff (timezone-aware); the end of the observation window.
        period_days: Length of one time unit in days (7 = weeks, as in the BTYD papers).

    Returns:
        One row per customer with an order before `as_of`, indexed by `customer_id`, with
        `frequency` (purchase days - 1), `recency` (first to last purchase day), `T` (first purchase
        day to `as_of`), both in periods, and `monetary_value` (mean spend of the repeat purchase
        days, 0 for customers without one).

    Raises:
        InputError: if a column is missing, `ordered_at` or `as_of` is not timezone-aware, or
            `period_days` is not positive.
    """
    if not period_days > 0:
        raise InputError(f"period_days must be positive, got {period_days}")
    as_of = _utc_timestamp(as_of)
    days = _purchase_days(orders, as_of)
    period = pd.Timedelta(days=period_days)
    by_customer = days.groupby("customer_id")["day"]
    first, last = by_customer.min(), by_customer.max()
    repeat = days[days["day"] > days["customer_id"].map(first)]
    summary = pd.DataFrame(
        {
            "frequency": (by_customer.size() - 1).astype(int),
            "recency": (last - first) / period,
            "T": (as_of - first) / period,
            "monetary_value": repeat.groupby("customer_id")["amount"]
            .mean()
            .reindex(first.index, fill_value=0.0),
        }
    )
    summary.index.name = "customer_id"
    return summary
