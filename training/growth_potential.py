"""Growth potential: the probability that a customer grows in the next horizon.

Growth (see `training.labels`): next-horizon spend at least 20% above the previous horizon's, or
purchases in at least two categories new to the customer. It is the P of the RFMP tier score.
"""

from features.model_table import MODELS
from training.baselines import growth_baselines
from training.spec import ModelSpec

SPEC = ModelSpec(
    model=MODELS["growth_potential"],
    objective="binary",
    baselines=growth_baselines,
    description="Probability of growing spend by 20% or buying two new categories in the next horizon.",
)
