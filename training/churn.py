"""Churn: the probability that a customer places no order in the next horizon."""

from training.baselines import churn_baselines
from training.spec import ModelSpec

SPEC = ModelSpec(
    name="churn",
    task="classification",
    label="churn",
    objective="binary",
    primary_metric="roc_auc",
    baselines=churn_baselines,
    monotone={"days_since_last_order": 1},
    description="Probability of no order in the next horizon (calibrated, Platt scaling on the validation cutoff).",
)
