"""What operations reads off the tier snapshots: KPIs, alerts, campaign segments and the HTML page.

`kpis` (tier summary, migrations, valuable customers at risk), `alerts` (typed rules that raise
JSON-ready alerts), `segments` (campaign lists with a reproducible control group) and `page` with
`charts` (one self-contained HTML report). Frames in, frames or text out: where files go is the
pipelines' business.
"""

from tiering.reports.alerts import (
    DEFAULT_RULES,
    AlertRule,
    DormantShare,
    ShareShift,
    TopTierAtRisk,
    evaluate_alerts,
    load_alert_rules,
    parse_alert_rules,
)
from tiering.reports.kpis import at_risk_top_tier, flow_rates, migration_matrix, tier_summary, top_tiers
from tiering.reports.segments import (
    SEGMENTS,
    Segment,
    SegmentExport,
    export_segment,
    segment_members,
)

__all__ = [
    "DEFAULT_RULES",
    "SEGMENTS",
    "AlertRule",
    "DormantShare",
    "Segment",
    "SegmentExport",
    "ShareShift",
    "TopTierAtRisk",
    "at_risk_top_tier",
    "evaluate_alerts",
    "export_segment",
    "flow_rates",
    "load_alert_rules",
    "migration_matrix",
    "parse_alert_rules",
    "segment_members",
    "tier_summary",
    "top_tiers",
]
