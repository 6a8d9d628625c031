"""Customer value: expected spend in the next horizon, zero for churners.

A Tweedie objective models the mass at zero and the skewed amounts together, which plain squared
error does badly (it chases the few large spenders and predicts negative values).

Its level is anchored (`training.level_anchor`): trees trained on earlier cutoffs carry the
population's earlier level forward, which over-predicts the total of a population whose purchase
rate decays; each scored population's mean prediction is set from its recent spend instead.
"""

from features.model_table import MODELS
from training.baselines import value_baselines
from training.spec import BASE_PARAMS, ModelSpec

SPEC = ModelSpec(
    model=MODELS["customer_value"],
    objective="tweedie",
    baselines=value_baselines,
    description="Expected spend in the next horizon (LightGBM, Tweedie objective).",
    params={**BASE_PARAMS, "tweedie_variance_power": 1.3},
    level_anchor=True,
)
