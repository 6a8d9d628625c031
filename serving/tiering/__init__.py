"""Customer tiering: one policy core that the online service and batch scoring both call.

Four steps, each a pure function over tables: `load_policy` (typed configuration from a preset or a
YAML file), `assign_tiers` (what the rules say today), `apply_retention` (grace before downgrades)
and `apply_overrides` (staff decisions with an expiry date).
"""

from serving.tiering.assign import assign_tiers, percentile, policy_scores, required_columns, rfmp_components
from serving.tiering.overrides import Override, apply_overrides, load_overrides
from serving.tiering.policy import PRESETS, Policy, Tier, Weights, load_policy, parse_policy
from serving.tiering.retention import apply_retention

__all__ = [
    "PRESETS",
    "Override",
    "Policy",
    "Tier",
    "Weights",
    "apply_overrides",
    "apply_retention",
    "assign_tiers",
    "load_overrides",
    "load_policy",
    "parse_policy",
    "percentile",
    "policy_scores",
    "required_columns",
    "rfmp_components",
]
