"""The three model specs by name, in the order `tierwise train --model all` runs them."""

from training import churn, customer_value, growth_potential
from training.spec import ModelSpec

SPECS: dict[str, ModelSpec] = {s.name: s for s in (churn.SPEC, customer_value.SPEC, growth_potential.SPEC)}
