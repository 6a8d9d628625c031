"""How much a campaign changed what its customers did: treated against control, with intervals.

The statistics an "effect review" needs, on plain arrays (one value per customer):
- `welch`: difference of means with Welch's 95% interval (unequal variances; counts and rates);
- `bootstrap`: the same difference with a seeded bootstrap interval (spend: skewed, many zeros);
- `cuped`: outcomes adjusted by a pre-period covariate (CUPED, Deng et al. 2013), which keeps the
  difference unbiased in a randomized split and narrows its interval by the covariate's correlation;
- `minimum_detectable_effect`: the smallest difference the groups could detect (80% power, 5% level).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
POWER = 0.80
BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True)
class Effect:
    """Treated minus control for one outcome.

    Attributes:
        treated_mean, control_mean: The groups' means.
        difference: treated_mean - control_mean (the average effect per treated customer).
        low, high: Its 95% interval.
        method: "welch" or "bootstrap", with "+cuped" when the outcome was adjusted.
    """

    treated_mean: float
    control_mean: float
    difference: float
    low: float
    high: float
    method: str
    treated: int
    control: int

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def as_dict(self) -> dict:
        return {**asdict(self), "excludes_zero": self.excludes_zero}


def welch(treated: np.ndarray, control: np.ndarray, method: str = "welch") -> Effect:
    """Difference of means with Welch's t interval."""
    treated, control = _values(treated), _values(control)
    _need_two_each(treated, control)
    difference = treated.mean() - control.mean()
    if _no_spread(treated, control):
        return _effect(treated, control, difference, difference, difference, method)
    interval = stats.ttest_ind(treated, control, equal_var=False).confidence_interval(CONFIDENCE)
    return _effect(treated, control, difference, interval.low, interval.high, method)


def bootstrap(treated: np.ndarray, control: np.ndarray, seed: int = 0, method: str = "bootstrap") -> Effect:
    """Difference of means with a seeded percentile bootstrap interval (each group resampled apart)."""
    treated, control = _values(treated), _values(control)
    _need_two_each(treated, control)
    difference = treated.mean() - control.mean()
    if _no_spread(treated, control):
        return _effect(treated, control, difference, difference, difference, method)
    result = stats.bootstrap(
        (treated, control),
        lambda t, c, axis: t.mean(axis=axis) - c.mean(axis=axis),
        n_resamples=BOOTSTRAP_RESAMPLES,
        confidence_level=CONFIDENCE,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return _effect(treated, control, difference, interval.low, interval.high, method)


def cuped(outcome: np.ndarray, covariate: np.ndarray) -> np.ndarray:
    """`outcome - theta * (covariate - mean(covariate))`, theta = cov / var over all customers.

    Computed on both groups together, so the adjustment is the same function for everyone and the
    difference of adjusted means stays an unbiased estimate of the effect.
    """
    outcome, covariate = _values(outcome), _values(covariate)
    variance = covariate.var()
    if variance == 0:
        return outcome.copy()
    theta = np.cov(outcome, covariate, bias=True)[0, 1] / variance
    return outcome - theta * (covariate - covariate.mean())


def minimum_detectable_effect(treated: np.ndarray, control: np.ndarray) -> float:
    """The smallest true difference these group sizes and spreads detect with 80% power at the 5% level."""
    treated, control = _values(treated), _values(control)
    _need_two_each(treated, control)
    z = stats.norm.ppf(1 - (1 - CONFIDENCE) / 2) + stats.norm.ppf(POWER)
    return float(z * np.sqrt(treated.var(ddof=1) / len(treated) + control.var(ddof=1) / len(control)))


def _values(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=float)


def _need_two_each(treated: np.ndarray, control: np.ndarray) -> None:
    if len(treated) < 2 or len(control) < 2:
        raise ValueError(
            f"an effect needs at least 2 customers in each group, got {len(treated)} treated and {len(control)} control"
        )


def _no_spread(treated: np.ndarray, control: np.ndarray) -> bool:
    return treated.var() == 0 and control.var() == 0


def _effect(
    treated: np.ndarray, control: np.ndarray, difference: float, low: float, high: float, method: str
) -> Effect:
    return Effect(
        float(treated.mean()),
        float(control.mean()),
        float(difference),
        float(low),
        float(high),
        method,
        len(treated),
        len(control),
    )
