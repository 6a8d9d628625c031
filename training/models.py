"""The training spec of every model in the model table, by name and in the table's order."""

from features.model_table import MODEL_NAMES
from training import churn, customer_value, growth_potential
from training.spec import ModelSpec

_SPECS = {s.name: s for s in (churn.SPEC, customer_value.SPEC, growth_potential.SPEC)}
SPECS: dict[str, ModelSpec] = {name: _SPECS[name] for name in MODEL_NAMES}
