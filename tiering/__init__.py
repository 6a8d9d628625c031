"""Customer tiering: the business rules over predictions, one core for batch scoring and the service.

Four steps, each a pure function over tables: `load_policy` (typed configuration from a preset or a
YAML file), `assign_tiers` (what the rules say today), `apply_retention` (grace before downgrades)
and `apply_overrides` (staff decisions with an expiry date). `risk` flags the few situations
operations acts on at once; `reference` and `lookup` let the service tier one customer against the
population of the latest batch snapshot.

What operations does with the resulting snapshots (KPIs, alerts, campaign segments and the HTML
report) lives in `tiering.reports`. This package imports `features` and `training`, never `serving`,
`monitoring` or `pipelines`, and touches no files but the YAML it is asked to read.
"""

from tiering.assign import (
    assign_tiers,
    percentile,
    percentile_of_ranks,
    policy_scores,
    required_columns,
    rfmp_components,
    rfmp_score,
    share_floors,
)
from tiering.overrides import Override, apply_overrides, load_overrides
from tiering.policy import PRESETS, Policy, Tier, Weights, load_policy, parse_policy
from tiering.retention import apply_retention
from tiering.risk import risk_flags

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
    "percentile_of_ranks",
    "policy_scores",
    "required_columns",
    "rfmp_components",
    "rfmp_score",
    "risk_flags",
    "share_floors",
]
