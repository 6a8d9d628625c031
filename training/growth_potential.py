"""Growth potential: the probability that an active customer grows against their own past.

Growth (see `training.labels`): a customer with an order in the last H days spends at least as much
in the next H days as in the last H, and orders clearly more often, fills clearly larger baskets or
buys in clearly more departments. It is the P of the RFMP tier score: the growth room of active
customers. Customers without an order in the last H days have no growth label, are neither trained
nor judged on, and get no growth potential (null in the snapshot and the API): for them the
question is reactivation, which the churn model and the lifecycle states answer.
"""

from __future__ import annotations

from features.model_table import MODELS
from training.baselines import growth_baselines
from training.spec import ModelSpec

SPEC = ModelSpec(
    model=MODELS["growth_potential"],
    objective="binary",
    baselines=growth_baselines,
    description=(
        "Probability that a customer active in the last horizon grows in the next one: at least the "
        "same spend, with clearly more orders, larger baskets or more departments."
    ),
    active_only=True,
)
