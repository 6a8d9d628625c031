"""`tierwise tiers report|alerts|export`: what operations reads and acts on, from the tier snapshots."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from features.errors import InputError
from features.files import write_frame_atomically, write_text_atomically
from features.model_table import MODEL_NAMES
from features.settings import Settings
from pipelines.home_lock import writes_home
from tiering import load_policy
from tiering.reports import (
    DEFAULT_RULES,
    SegmentExport,
    evaluate_alerts,
    export_segment,
    flow_rates,
    load_alert_rules,
    migration_matrix,
    tier_summary,
)
from training.personas import champion_personas


@dataclass(frozen=True)
class Snapshots:
    as_of: date
    current: pd.DataFrame
    previous: pd.DataFrame | None
    previous_as_of: date | None


def load_snapshots(settings: Settings, policy_name: str, as_of: date | None = None) -> Snapshots:
    """The tier snapshot at `as_of` (default: the latest) and the one before it."""
    tiers = settings.tier_snapshots(load_policy(policy_name).name)
    chosen = tiers.choose(as_of)
    previous = tiers.previous(chosen)
    return Snapshots(chosen, tiers.read(chosen), None if previous is None else tiers.read(previous), previous)


def report(settings: Settings, policy_name: str, as_of: date | None = None) -> dict[str, pd.DataFrame]:
    """Tier sizes, value and risk per tier; migration and flow rates against the previous snapshot."""
    policy = load_policy(policy_name)
    snaps = load_snapshots(settings, policy_name, as_of)
    tables = {"summary": tier_summary(snaps.current, policy)}
    if snaps.previous is not None:
        matrix = migration_matrix(snaps.previous, snaps.current, policy)
        tables["migration"] = matrix
        tables["flow_rates"] = flow_rates(matrix)
    return tables


@writes_home
def html_report(
    settings: Settings, policy_name: str, as_of: date | None = None, output: Path | None = None
) -> Path:
    """Write the operations report page (default `data/reports/<policy>-<date>.html`) and return its path.

    The page shows the snapshot at `as_of` (default: the latest) against the one before it, what each
    tier really spent over the past horizon, the at-risk top-tier customers of every snapshot up to
    `as_of`, and the alerts of the built-in rules.
    """
    from tiering.reports.page import at_risk_history, render_report

    policy = load_policy(policy_name)
    snaps = load_snapshots(settings, policy_name, as_of)
    tiers = settings.tier_snapshots(policy.name)
    columns = ["customer_id", "tier", "expected_value", "churn_probability"]
    history = {day: tiers.read(day, columns) for day in tiers.dates() if day <= snaps.as_of}
    horizon = int(snaps.current["horizon_days"].iloc[0]) if len(snaps.current) else 0
    page = render_report(
        snaps.current,
        policy,
        as_of=snaps.as_of,
        previous=snaps.previous,
        previous_as_of=snaps.previous_as_of,
        actual_spend=past_spend(settings, snaps.as_of, horizon),
        history=at_risk_history(history, policy),
        alerts=evaluate_alerts(snaps.current, snaps.previous, policy, DEFAULT_RULES, as_of=snaps.as_of),
        model_health=model_health(settings, snaps.as_of),
        campaigns=measured_campaigns(settings, policy.name, snaps.as_of),
        persona_profile=_persona_profile(settings),
    )
    target = output or settings.data_dir / "reports" / f"{policy.name}-{snaps.as_of}.html"
    return write_text_atomically(page, target)


def _persona_profile(settings: Settings) -> pd.DataFrame | None:
    model = champion_personas(settings)
    return None if model is None else model.centres_in_words()


def measured_campaigns(settings: Settings, policy: str, as_of: date) -> list[dict]:
    """Measurements of the campaigns launched on `policy` up to `as_of`, for the report's section."""
    from pipelines.campaigns import recorded_launches

    found = []
    for launch, result in recorded_launches(settings):
        if result is None or launch["policy"] != policy or date.fromisoformat(launch["as_of"]) > as_of:
            continue
        primary = result["primary"]
        found.append(
            {
                "campaign": result["campaign"],
                "as_of": result["as_of"],
                "outcome": result["outcome"],
                "treatment": primary["treated"],
                "control": primary["control"],
                "difference": primary["difference"],
                "low": primary["low"],
                "high": primary["high"],
                "verdict": result["verdict"],
            }
        )
    return found


def model_health(settings: Settings, as_of: date) -> list[dict]:
    """What `tierwise monitor` wrote for `as_of`, per model, for the report's model-health section."""
    from features.model_table import MODEL_NAMES

    folder = settings.data_dir / "reports" / "monitoring"
    found = []
    for name in MODEL_NAMES:
        path = folder / name / f"{as_of}.json"
        if path.exists():
            saved = json.loads(path.read_text())
            found.append(
                {
                    "model": name,
                    "version": saved["version"],
                    "grade": saved["grade"],
                    "drifted_share": saved["feature_drift"]["drifted_share"],
                    "alerts": len(saved["alerts"]),
                    "link": f"monitoring/{as_of}.html",
                }
            )
    return found


def past_spend(settings: Settings, as_of: date, horizon_days: int) -> pd.Series:
    """Each customer's spend over the `horizon_days` before `as_of` (orders in [as_of - horizon, as_of)),
    indexed by customer_id; customers without an order in that window are absent."""
    from features.live_data import open_live_data

    con = open_live_data(settings)
    start = as_of - timedelta(days=horizon_days)
    frame = con.execute(
        "SELECT customer_id, sum(amount) AS spend FROM orders "
        "WHERE ordered_at >= CAST(? AS TIMESTAMPTZ) AND ordered_at < CAST(? AS TIMESTAMPTZ) GROUP BY ALL",
        [start.isoformat(), as_of.isoformat()],
    ).df()
    return pd.Series(frame["spend"].to_numpy(dtype=float), index=frame["customer_id"].astype(str))


@writes_home
def alerts(
    settings: Settings,
    policy_name: str,
    as_of: date | None = None,
    rules_path: Path | None = None,
    output: Path | None = None,
) -> list[dict]:
    """Evaluate the alert rules; write the records as JSON (default `data/alerts/<policy>/<date>.json`)."""
    policy = load_policy(policy_name)
    snaps = load_snapshots(settings, policy_name, as_of)
    rules = load_alert_rules(rules_path) if rules_path else DEFAULT_RULES
    records = evaluate_alerts(snaps.current, snaps.previous, policy, rules, as_of=snaps.as_of)
    target = output or settings.data_dir / "alerts" / policy.name / f"{snaps.as_of}.json"
    write_text_atomically(json.dumps(records, indent=1, default=str), target)
    return records


@dataclass(frozen=True)
class WrittenSegment:
    """A campaign list and where its two files were written."""

    export: SegmentExport
    treated_path: Path
    control_path: Path


@writes_home
def export(
    settings: Settings,
    policy_name: str,
    segment: str,
    output: Path,
    control_share: float = 0.1,
    as_of: date | None = None,
) -> WrittenSegment:
    """Write a campaign list (and its held-out control list) for the CRM."""
    policy = load_policy(policy_name)
    snaps = load_snapshots(settings, policy_name, as_of)
    target = check_export_path(output)
    return write_segment_lists(
        export_segment(snaps.current, policy, segment, control_share=control_share), target
    )


def check_export_path(path: Path) -> Path:
    """The CRM file to write, refused early unless it is CSV or Parquet."""
    target = Path(path).expanduser()
    if target.suffix.lower() not in (".csv", ".parquet"):
        raise InputError(f"{target}: unsupported export file; use CSV (.csv) or Parquet (.parquet)")
    return target


def write_segment_lists(export: SegmentExport, path: Path) -> WrittenSegment:
    """Write the treated list to `path` and the control list beside it as `<stem>.control<suffix>`
    (CSV or Parquet by the suffix; folders created; each file in one rename)."""
    target = check_export_path(path)
    control_path = target.with_name(f"{target.stem}.control{target.suffix}")
    write_frame_atomically(export.treated, target)
    write_frame_atomically(export.control, control_path)
    return WrittenSegment(export, target, control_path)


@writes_home
def policy_backtest(
    settings: Settings, policy_name: str, as_of: date, horizon_days: int, allow_leakage: bool = False
) -> pd.DataFrame:
    """What each tier assigned at `as_of` really did in the next horizon, predictive beside classic.

    Tiers both modes at `as_of` (the champions' predictions, or history only) without writing them
    (the tier history stays as scoring left it), then joins what happened: spend per customer and
    churn rate per tier. Needs orders until `as_of + horizon`. Refused when a champion was trained on
    orders after `as_of`, unless `allow_leakage`.
    """
    from features.live_data import open_live_data
    from features.snapshots import data_period
    from pipelines.score import assigned_tiers
    from pipelines.train import labels_on_engine
    from training import registry
    from training.labels import outcome_end
    from training.run import leakage_message, trained_after

    con = open_live_data(settings)
    needed = outcome_end(data_period(con).last_order, as_of, horizon_days, "policy backtest")
    outcome = labels_on_engine(settings, con, [as_of], horizon_days, needed, with_categories=False)[
        ["customer_id", "churn", "value"]
    ]
    registry.configure(settings)
    for name in MODEL_NAMES:
        info = registry.champion(name)
        trained = None if info is None else trained_after(info.tags, as_of)
        if trained is not None and not allow_leakage:
            raise InputError(leakage_message(name, info.version, trained, as_of))
    policy = load_policy(policy_name)
    rows = []
    for classic in (False, True):
        joined = assigned_tiers(settings, as_of, policy_name, classic).merge(
            outcome, on="customer_id", how="left"
        )
        mode = "classic" if classic else "predictive"
        for rank, tier in enumerate(policy.tiers):
            members = joined[joined["tier"] == tier.name]
            rows.append(
                {
                    "mode": mode,
                    "tier": tier.name,
                    "rank": rank,
                    "customers": len(members),
                    "next_spend_per_customer": members["value"].mean() if len(members) else float("nan"),
                    "churn_rate": members["churn"].mean() if len(members) else float("nan"),
                    "spend_share": members["value"].sum() / max(joined["value"].sum(), 1e-9),
                }
            )
    return pd.DataFrame(rows)
