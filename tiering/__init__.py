"""Customer tiering: one policy core that the online service and batch scoring both call.

Four steps, each a pure function over tables: `load_policy` (typed configuration from a preset or a
YAML file), `assign_tiers` (what the rules say today), `apply_retention` (grace before downgrades)
and `apply_overrides` (staff decisions with an expiry date).

What operations does with the resulting snapshots: `kpis` (tier summary, migrations, valuable
customers at risk), `alerts` (typed rules that raise JSON-ready alerts) and `segments` (campaign
lists for the CRM with a reproducible control group).
"""

from serving.tiering.alerts import (
    DEFAULT_RULES,
    AlertRule,
    DormantShare,
    ShareShift,
    TopTierAtRisk,
    evaluate_alerts,
    load_alert_rules,
    parse_alert_rules,
)
from serving.tiering.assign import assign_tiers, percentile, policy_scores, required_columns, rfmp_components
from serving.tiering.kpis import at_risk_top_tier, flow_rates, migration_matrix, tier_summary, top_tiers
from serving.tiering.overrides import Override, apply_overrides, load_overrides
from serving.tiering.policy import PRESETS, Policy, Tier, Weights, load_policy, parse_policy
from serving.tiering.retention import apply_retention
from serving.tiering.segments import (
    DEFAULT_BENEFITS,
    SEGMENTS,
    Segment,
    SegmentExport,
    export_segment,
    segment_members,
)

__all__ = [
    "DEFAULT_BENEFITS",
    "DEFAULT_RULES",
    "PRESETS",
    "SEGMENTS",
    "AlertRule",
    "DormantShare",
    "Override",
    "Policy",
    "Segment",
    "SegmentExport",
    "ShareShift",
    "Tier",
    "TopTierAtRisk",
    "Weights",
    "apply_overrides",
    "apply_retention",
    "assign_tiers",
    "at_risk_top_tier",
    "evaluate_alerts",
    "export_segment",
    "flow_rates",
    "load_alert_rules",
    "load_overrides",
    "load_policy",
    "migration_matrix",
    "parse_alert_rules",
    "parse_policy",
    "percentile",
    "policy_scores",
    "required_columns",
    "rfmp_components",
    "segment_members",
    "tier_summary",
    "top_tiers",
]
