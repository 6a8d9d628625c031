"""When monitoring raises an alert: the thresholds, in one typed place with documented defaults.

Defaults suit a weekly or daily scoring run of thousands to millions of customers. A home can
override any of them in `<home>/monitoring.yaml` (or `tierwise monitor --thresholds FILE`); a
typo is refused with the field's name, never silently ignored.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from features.errors import InputError
from features.files import read_yaml


class Thresholds(BaseModel):
    """Alert thresholds of `tierwise monitor`.

    Attributes:
        drifted_share: Data drift when at least this share of a model's features drifted (Evidently's
            per-column tests: normed Wasserstein distance ≥ 0.1 for numbers, Jensen-Shannon distance
            ≥ 0.1 for text, on samples of more than 1,000 rows; K-S and chi-squared tests below).
        top_features: Data drift also when any of the model's `top_features` most important features
            (mean |SHAP| at training) drifted, whatever the share.
        prediction_shift: Prediction drift when the mean prediction moved by more than this share of
            the reference mean (0.2: a churn rate of 6% read as 7.2% or 4.8%), or Evidently's drift
            test on the prediction column fails.
        quality_drop: Quality alert when a matured snapshot's primary metric (ROC-AUC, normalized
            Gini) is this much below the test metric recorded at training.
        min_labelled: Fewest labelled customers (and, for classifiers, positives) before a quality
            verdict is given: fewer, and the metric's 95% band is too wide to act on.
        stat_rows: Drift statistics use a seeded sample of at most this many current rows. The drift
            distances are means over the sample, with a standard error near sqrt(2 / n) of the
            distribution's spread: about 0.006 at 50,000 rows, 16 times below the 0.1 threshold.

    The HTML pages are drawn from the same samples: Evidently embeds binned plot data, so a page's
    size follows the number of columns, not rows (measured: 56 columns, 7.6 MB at 5,000 rows and at
    50,000 rows), and the JSON keeps every statistic.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    drifted_share: float = Field(0.3, gt=0, le=1)
    top_features: int = Field(5, ge=0)
    prediction_shift: float = Field(0.2, gt=0)
    quality_drop: float = Field(0.05, gt=0, le=1)
    min_labelled: int = Field(200, ge=1)
    stat_rows: int = Field(50_000, ge=1_000)


def load_thresholds(path: Path | None) -> Thresholds:
    """The thresholds in `path` (YAML mapping of fields to values); the defaults when None.

    Raises:
        InputError: an unknown field or a value out of range, named with the file.
    """
    if path is None:
        return Thresholds()
    data = read_yaml(path) or {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of threshold names to values")
    try:
        return Thresholds.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise InputError(f"{path}: {problems}") from None
