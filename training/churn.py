"""Churn: the probability that a customer places no order in the next horizon."""

from features.model_table import MODELS
from training.baselines import churn_baselines
from training.spec import ModelSpec

SPEC = ModelSpec(
    model=MODELS["churn"],
    objective="binary",
    baselines=churn_baselines,
    monotone={"days_since_last_order": 1},
    calibrate_on_latest=True,
    description="Probability of no order in the next horizon (calibrated: Platt scaling on the held-out customers of the latest cutoffs).",
)
