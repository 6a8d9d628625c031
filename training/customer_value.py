"""Customer value: expected spend in the next horizon, zero for churners.

A Tweedie objective models the mass at zero and the skewed amounts together, which plain squared
error does badly (it chases the few large spenders and predicts negative values).
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
)
