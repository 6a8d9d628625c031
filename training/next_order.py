"""When will a customer order next: a distribution over time that respects censoring.

A customer with no order in the H days after a cutoff has no "days to next order"; dropping them
would teach a model that everybody comes back, and imputing H would teach it a date that never
happened. Both are avoided by learning the cumulative distribution F(t | x) = P(next order within t
days) on a fixed grid of days t <= H: each example (x, cutoff) becomes one row (x, t) per grid day,
labelled 1{days_to_next_order < t}. For a censored customer every such label is 0 and truly observed
(no order in [as_of, as_of + H) implies none before any t <= H), so no row needs a guess. One
LightGBM classifier learns all horizons at once, with `horizon_days` as a feature under a +1
monotone constraint so that F(t | x) never falls as t grows, then Platt scaling on held-out
customers (one slope and intercept on the logit for every horizon, which keeps F monotone);
`recalibrate` refits those two on a later cutoff whose shorter horizon has already ended, for data
whose order rate drifts.

Answers per customer: `p_order_7d` = F(7), `p_order_30d` = F(30), and `expected_next_order_days`,
the median: the first t where F(t) >= 0.5, interpolated linearly on the grid (F(0) = 0). When
F(H) < 0.5 the median lies beyond the horizon, and the answer is NaN ("no order expected within the
horizon") rather than a date inside a window in which the customer most likely does not order.

Baselines on the same rows: BG/NBD's P(order within t) = 1 - P(no purchase in t) with the same
median rule, and the customer's own rhythm, mean interval minus days since the last order (a date
only, no probability).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn import metrics as skm

from features.errors import InputError
from training import btyd
from training.backtest_plan import is_validation_customer
from training.bundle import ModelBundle, category_vocabulary
from training.fit import EARLY_STOPPING_ROUNDS, platt_scaling
from training.metrics import expected_calibration_error
from training.spec import BASE_PARAMS, MAX_LEAVES

LABEL = "days_to_next_order"
HORIZON_FEATURE = "horizon_days"
#: Days at which F(t) is learned; a horizon H keeps the days below it and adds H itself.
HORIZONS = (1, 3, 7, 14, 21, 30, 45, 60, 75, 90)
#: The days `p_order_<t>d` answers for; the horizon must reach the longest.
ANSWER_DAYS = (7, 30)
OUTPUTS = ("p_order_7d", "p_order_30d", "expected_next_order_days")
MEDIAN_LEVEL = 0.5


def horizon_grid(horizon_days: int) -> tuple[int, ...]:
    """The grid days for a horizon: every `HORIZONS` day below it, then the horizon itself.

    Raises:
        InputError: the horizon is shorter than 30 days, so P(order within 30 days) is not observed.
    """
    if horizon_days < max(ANSWER_DAYS):
        raise InputError(
            f"horizon_days is {horizon_days}: the next-order model answers P(order within "
            f"{max(ANSWER_DAYS)} days), so labels must look at least {max(ANSWER_DAYS)} days ahead"
        )
    return (*(t for t in HORIZONS if t < horizon_days), int(horizon_days))


def median_days(cdf: np.ndarray, grid: tuple[int, ...]) -> np.ndarray:
    """Smallest t with F(t) >= 0.5, linear between grid days (F(0) = 0); NaN where F(H) < 0.5.

    Args:
        cdf: F(t) per customer (rows) and grid day (columns), non-decreasing along each row.
        grid: The grid days, ascending; the last is the horizon.

    Returns:
        Days from the cutoff to the median next order, NaN when it lies beyond the horizon.
    """
    days = np.concatenate([[0.0], np.asarray(grid, dtype=float)])
    values = np.column_stack([np.zeros(len(cdf)), cdf])
    reached = values >= MEDIAN_LEVEL
    answered = reached[:, -1]
    first = np.where(answered, reached.argmax(axis=1), 1)
    rows = np.arange(len(cdf))
    low_f, high_f = values[rows, first - 1], values[rows, first]
    share = np.divide(MEDIAN_LEVEL - low_f, high_f - low_f, out=np.ones(len(cdf)), where=high_f > low_f)
    median = days[first - 1] + share * (days[first] - days[first - 1])
    return np.where(answered, median, np.nan)


def answers_from_cdf(cdf: np.ndarray, grid: tuple[int, ...], index: pd.Index | None = None) -> pd.DataFrame:
    """The three outputs (`OUTPUTS`) from F(t) on the grid, for the model and BG/NBD alike."""
    columns = {f"p_order_{t}d": cdf[:, grid.index(t)] for t in ANSWER_DAYS}
    columns["expected_next_order_days"] = median_days(cdf, grid)
    return pd.DataFrame(columns, index=index)


def expected_dates(as_of: pd.Timestamp, days: pd.Series) -> pd.Series:
    """The expected next-order date: `as_of` plus the median days (NaT where there is none)."""
    return pd.Timestamp(as_of) + pd.to_timedelta(days, unit="D")


@dataclass(frozen=True)
class NextOrderModel:
    """A fitted next-order model, small enough to pickle or store as JSON.

    Attributes:
        model_string: The LightGBM booster as text (`Booster.model_to_string`).
        feature_names: Customer features in the order the booster reads them (then `horizon_days`).
        categories: For string features, the values seen in training; their position is the code.
        grid: The days F(t) is predicted at; the last is the horizon.
        base_logits: Per grid day, the logit boosting started from (added to the booster's raw score).
        calibration: Platt `(slope, intercept)` on the logit, or None for the raw probabilities.
    """

    model_string: str
    feature_names: list[str]
    categories: dict[str, list[str]]
    grid: tuple[int, ...]
    base_logits: tuple[float, ...]
    calibration: tuple[float, float] | None = None
    trees: int = field(default=0, compare=False)

    @property
    def horizon_days(self) -> int:
        return self.grid[-1]

    @cached_property
    def booster(self) -> lgb.Booster:
        return lgb.Booster(model_str=self.model_string)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "booster"}

    def cdf(self, frame: pd.DataFrame) -> np.ndarray:
        """F(t | x): P(next order within t days) per row of `frame` (rows) and grid day (columns).

        Args:
            frame: The customer features in `feature_names` (missing columns are missing values).
        """
        features = _encoder(self.feature_names, self.categories).matrix(frame)
        result = np.empty((len(features), len(self.grid)))
        for start in range(0, len(features), CDF_CHUNK):
            part = features[start : start + CDF_CHUNK]
            raw = self.booster.predict(_stack(part, self.grid), raw_score=True)
            raw += np.tile(self.base_logits, len(part))
            if self.calibration is not None:
                slope, intercept = self.calibration
                raw = slope * raw + intercept
            result[start : start + len(part)] = (1.0 / (1.0 + np.exp(-raw))).reshape(
                len(part), len(self.grid)
            )
        return result

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """`p_order_7d`, `p_order_30d` and `expected_next_order_days` (NaN: none within the horizon),
        indexed like `frame`."""
        return answers_from_cdf(self.cdf(frame), self.grid, frame.index)

    def to_json(self) -> str:
        return json.dumps(
            {
                "model_string": self.model_string,
                "feature_names": self.feature_names,
                "categories": self.categories,
                "grid": list(self.grid),
                "base_logits": list(self.base_logits),
                "calibration": None if self.calibration is None else list(self.calibration),
                "trees": self.trees,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> NextOrderModel:
        meta = json.loads(text)
        calibration = None if meta["calibration"] is None else tuple(meta["calibration"])
        return cls(
            meta["model_string"],
            meta["feature_names"],
            meta["categories"],
            tuple(meta["grid"]),
            tuple(meta["base_logits"]),
            calibration,  # type: ignore[arg-type]
            meta["trees"],
        )


def _encoder(feature_names: list[str], categories: dict[str, list[str]]) -> ModelBundle:
    """A bundle used only for its `matrix`: features encoded exactly as the other models encode them."""
    return ModelBundle("next_order", None, feature_names, categories, None, 0)  # type: ignore[arg-type]


#: Customers per booster call of `NextOrderModel.cdf`: the stacked matrix has a row per customer and
#: grid day, so a million customers in one call held about 10 GB (measured: scoring 1M peaked at 12 GB).
CDF_CHUNK = 50_000


def _stack(features: np.ndarray, grid: tuple[int, ...]) -> np.ndarray:
    """One row per (customer, grid day), customers outermost, the day as the last column (written
    in place: `np.repeat` then `np.column_stack` made two copies of the grid-times-larger matrix)."""
    customers, width = features.shape
    stacked = np.empty((customers, len(grid), width + 1), dtype=np.float64)
    stacked[:, :, :width] = features[:, None, :]
    stacked[:, :, width] = np.asarray(grid, dtype=np.float64)
    return stacked.reshape(customers * len(grid), width + 1)


def _base_logits(stacked_labels: np.ndarray, days: int) -> np.ndarray:
    """Logit of the share of training customers who ordered by each grid day: where boosting starts.

    The trees then spend their budget (`spec.MAX_LEAVES`) on how customers differ, not on the shape
    of F in t that every customer shares. Measured on Complete Journey (test cutoff 2017-10-02)
    against one flat start: raw ECE of p_order_7d 0.069 -> 0.045, and with the flat start no
    customer's F(H) stayed below 0.5, so every silent customer got a date.
    """
    rate = stacked_labels.reshape(-1, days).mean(axis=0)
    rate = np.clip(np.maximum.accumulate(rate), 1e-4, 1 - 1e-4)
    return np.log(rate / (1 - rate))


def _stacked_labels(days_to_next: np.ndarray, grid: tuple[int, ...]) -> np.ndarray:
    """1{next order before t} per (customer, grid day); a censored customer (NaN) is 0 at every t <= H."""
    ordered = np.nan_to_num(days_to_next, nan=np.inf)
    return (ordered[:, None] < np.asarray(grid, dtype=float)[None, :]).ravel().astype(np.float64)


def check_examples(examples: pd.DataFrame, feature_names: list[str], horizon_days: int) -> np.ndarray:
    """The label as floats (NaN = censored), after checking the examples can train the model.

    Raises:
        InputError: a required column is missing, or a label is negative or not below the horizon
            (labels computed for another horizon).
    """
    missing = [c for c in ("customer_id", LABEL, *feature_names) if c not in examples.columns]
    if missing:
        raise InputError(
            f"the next-order examples lack the columns {missing}; they need customer_id, {LABEL} "
            "(null when no order in the horizon) and the features"
        )
    if HORIZON_FEATURE in feature_names:
        raise InputError(f"{HORIZON_FEATURE!r} is added by the model; it cannot be a customer feature")
    days = pd.to_numeric(examples[LABEL], errors="coerce").to_numpy(dtype=np.float64)
    observed = days[~np.isnan(days)]
    if (observed < 0).any() or (observed >= horizon_days).any():
        raise InputError(
            f"{LABEL} must lie in [0, {horizon_days}) or be null (no order in the horizon); found values "
            f"from {observed.min():g} to {observed.max():g}: were the labels computed for another horizon?"
        )
    return days


def fit_next_order(
    examples: pd.DataFrame,
    feature_names: list[str],
    horizon_days: int,
    params: dict[str, Any] | None = None,
    calibrate: bool = True,
) -> NextOrderModel:
    """Fit F(t | x) on stacked horizons: held-out customers stop the boosting and fit Platt scaling.

    The validation customers are the same fixed 20% every model holds out
    (`backtest_plan.is_validation_customer`), so several cutoffs of one customer never sit on both
    sides. Early stopping watches the log-loss, a proper score, because the answers are probabilities
    and a date derived from their level, not a ranking.

    Args:
        examples: One row per (customer, cutoff): `customer_id`, `days_to_next_order` (null when no
            order within the horizon, as `training.labels.compute_labels` gives it) and the features.
        feature_names: The feature columns; non-numeric ones are encoded as codes of their sorted values.
        horizon_days: H, the horizon the labels were computed with (at least 30).
        params: LightGBM parameters over `spec.BASE_PARAMS` (seeded and deterministic whatever is given).
        calibrate: Fit Platt scaling on the held-out customers (False: raw probabilities).

    Returns:
        The fitted model.

    Raises:
        InputError: bad columns, labels or horizon (see `check_examples`, `horizon_grid`), or held-out
            customers without both an order and a silence at some grid day.
    """
    grid = horizon_grid(horizon_days)
    days = check_examples(examples, feature_names, horizon_days)
    strings = [c for c in feature_names if not pd.api.types.is_numeric_dtype(examples[c])]
    categories = category_vocabulary(examples, strings)
    features = _encoder(feature_names, categories).matrix(examples)
    held = is_validation_customer(examples["customer_id"]).to_numpy()
    x_train, y_train = _stack(features[~held], grid), _stacked_labels(days[~held], grid)
    x_valid, y_valid = _stack(features[held], grid), _stacked_labels(days[held], grid)
    if y_valid.min(initial=1.0) == y_valid.max(initial=0.0):
        raise InputError(
            f"the {int(held.sum())} held-out customers need both orders and silences within the grid days "
            "to stop and calibrate the model; give more customers or cutoffs"
        )
    merged = {**BASE_PARAMS, **(params or {})}
    rounds = max(1, min(int(merged.pop("n_estimators")), MAX_LEAVES // int(merged["num_leaves"])))
    names = [*feature_names, HORIZON_FEATURE]
    merged |= {
        "objective": "binary",
        "metric": "binary_logloss",
        "seed": 7,
        "deterministic": True,
        "monotone_constraints": [0] * len(feature_names) + [1],
    }
    base = _base_logits(y_train, len(grid))
    start_train, start_valid = np.tile(base, int((~held).sum())), np.tile(base, int(held.sum()))
    d_train = lgb.Dataset(x_train, y_train, feature_name=names, init_score=start_train)
    d_valid = lgb.Dataset(x_valid, y_valid, reference=d_train, init_score=start_valid)
    booster = lgb.train(
        merged,
        d_train,
        num_boost_round=rounds,
        valid_sets=[d_valid],
        callbacks=[lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)],
    )
    raw_valid = booster.predict(x_valid, raw_score=True) + start_valid
    calibration = platt_scaling(raw_valid, y_valid) if calibrate else None
    if calibration is not None and calibration[0] <= 0:
        calibration = None  # a falling slope would turn F(t) upside down; never seen, but never allowed
    trees = booster.best_iteration or booster.current_iteration()
    return NextOrderModel(
        booster.model_to_string(num_iteration=trees),
        feature_names,
        categories,
        grid,
        tuple(base.tolist()),
        calibration,
        trees,
    )


def recalibrate(model: NextOrderModel, examples: pd.DataFrame, horizon_days: int) -> NextOrderModel:
    """The model with its Platt scaling refit on a later cutoff whose shorter horizon has ended.

    Why: on a cohort whose order rate drifts, the level learned on training cutoffs that ended a
    horizon ago is stale (Complete Journey: 30-day order rate 0.88 in February, 0.83 in October).
    A cutoff 35 days before the prediction date already shows 35 days of outcomes; refitting the two
    Platt parameters there moves the level without touching the ranking. The booster is unchanged.

    Args:
        model: A fitted model.
        examples: One later cutoff's rows: `customer_id`, `days_to_next_order` (null when no order
            within `horizon_days`) and the model's features.
        horizon_days: The horizon these labels were computed with (at least 30, at most the model's).

    Raises:
        InputError: as `check_examples`, or a horizon outside [30, the model's horizon].
    """
    horizon_grid(horizon_days)
    if horizon_days > model.horizon_days:
        raise InputError(
            f"recalibration horizon {horizon_days} exceeds the model's {model.horizon_days} days"
        )
    days = check_examples(examples, model.feature_names, horizon_days)
    observed = [i for i, t in enumerate(model.grid) if t <= horizon_days]
    cdf = replace(model, calibration=None).cdf(examples)[:, observed]
    labels = _stacked_labels(days, tuple(model.grid[i] for i in observed))
    clipped = np.clip(cdf.ravel(), 1e-12, 1 - 1e-12)
    slope, intercept = platt_scaling(np.log(clipped / (1 - clipped)), labels)
    return replace(model, calibration=(slope, intercept) if slope > 0 else None)


def bgnbd_cdf(
    params: btyd.BgNbdParams, grid: tuple[int, ...], summary: pd.DataFrame, period_days: float = 7.0
) -> np.ndarray:
    """BG/NBD P(order within t days) = 1 - P(no purchase in t) per customer and grid day.

    That is P(alive) * (1 - ((alpha+T)/(alpha+T+t))^(r+x)): an alive customer's rate is
    Gamma(r+x, alpha+T) given the history, a dead one never buys.

    Args:
        params: BG/NBD parameters fitted in periods of `period_days`.
        grid: Days to answer for.
        summary: `btyd.rfm_summary` output (`frequency`, `recency`, `T` in periods) for the customers.
        period_days: Days per period of `params` and `summary`.
    """
    t = np.asarray(grid, dtype=float)[None, :] / period_days
    f, r, age = (summary[c].to_numpy(dtype=float)[:, None] for c in ("frequency", "recency", "T"))
    return 1.0 - btyd.prob_no_purchase(params, t, f, r, age)


def bgnbd_answers(
    orders: pd.DataFrame, customers: pd.Series, as_of: pd.Timestamp, horizon_days: int
) -> pd.DataFrame:
    """The BG/NBD baseline's three answers for `customers`, fitted on their orders before `as_of`.

    Args:
        orders: Columns `customer_id`, `ordered_at` (UTC), `amount`.
        customers: Customer ids, each with an order before `as_of`.
        as_of: The cutoff (timezone-aware).
        horizon_days: H, the horizon of the grid.
    """
    grid = horizon_grid(horizon_days)
    summary = btyd.rfm_summary(orders, as_of, period_days=7.0).reindex(customers.to_numpy())
    params = btyd.fit_bgnbd(summary["frequency"], summary["recency"], summary["T"])
    return answers_from_cdf(bgnbd_cdf(params, grid, summary), grid, customers.index)


def own_interval_days(features: pd.DataFrame) -> pd.Series:
    """The customer's own rhythm: mean days between orders minus days since the last, at least 0.

    NaN for customers with one order (no interval yet). Required columns `interorder_days_mean`,
    `days_since_last_order`.
    """
    return (features["interorder_days_mean"] - features["days_since_last_order"]).clip(lower=0.0)


def next_order_metrics(
    days_to_next: npt.ArrayLike,
    median: npt.ArrayLike,
    p_7d: npt.ArrayLike | None = None,
    p_30d: npt.ArrayLike | None = None,
) -> dict[str, float]:
    """How good a set of next-order answers is, against what happened.

    Args:
        days_to_next: Realized days to the next order, NaN when none within the horizon (censored).
        median: Predicted days (NaN = none expected within the horizon).
        p_7d: P(order within 7 days), if the scorer gives probabilities.
        p_30d: P(order within 30 days), likewise.

    Returns:
        `mae_days`: mean |median - realized| over customers who ordered and got a date;
        `no_date_share`: share of those who ordered that got no date; `date_for_silent_share`: share
        of censored customers who got a date (inside the window, where they did not order);
        with probabilities, `ece_7d`, `brier_7d`, `ece_30d`, `brier_30d`, `auc_30d` (NaN when
        everyone or no one ordered within 30 days).
    """
    actual = np.asarray(days_to_next, dtype=float)
    guess = np.asarray(median, dtype=float)
    ordered, dated = ~np.isnan(actual), ~np.isnan(guess)
    both = ordered & dated
    scores = {
        "mae_days": float(np.abs(guess[both] - actual[both]).mean()) if both.any() else math.nan,
        "no_date_share": float((~dated[ordered]).mean()) if ordered.any() else math.nan,
        "date_for_silent_share": float(dated[~ordered].mean()) if (~ordered).any() else math.nan,
    }
    for days, p in zip(ANSWER_DAYS, (p_7d, p_30d), strict=True):
        if p is None:
            continue
        happened = (np.nan_to_num(actual, nan=np.inf) < days).astype(float)
        prob = np.asarray(p, dtype=float)
        scores[f"ece_{days}d"] = expected_calibration_error(happened, prob)
        scores[f"brier_{days}d"] = float(skm.brier_score_loss(happened, prob))
    if p_30d is not None:
        happened = (np.nan_to_num(actual, nan=np.inf) < 30).astype(float)
        two_classes = 0 < happened.sum() < happened.size
        scores["auc_30d"] = float(skm.roc_auc_score(happened, p_30d)) if two_classes else math.nan
    return scores
