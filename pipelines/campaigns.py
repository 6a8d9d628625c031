"""`tierwise campaigns launch / measure / list`: send a campaign with a control group, then measure it.

A launch is recorded under `data/campaigns/<name>/<as-of>/`: `members.parquet` (every targeted
customer, their group, tier, predictions and benefit at launch) and `launch.json` (the campaign as it
was defined, the policy and model versions, the counts), written into a temporary folder and renamed
into place in one step; a line is appended to `data/campaigns/launches.jsonl`, the campaign log. The
treatment list goes to the CRM as CSV or Parquet. Launching the same campaign on the same date again
changes nothing; on another date it is refused unless asked.

`measure` reads the launch record and the imported orders after the measurement window has ended and
writes `measurement.json` beside the launch: treated against control on each outcome with 95%
intervals (raw and CUPED-adjusted by the same outcome over the window before the launch), the
incremental revenue and margin, cost and ROI, whether the groups could detect the expected lift, and
the effect by tier and by churn-risk decile.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from features.data.duck import sql_string
from features.errors import InputError
from features.files import fsync_path, write_frame_atomically, write_text_atomically
from features.live_data import open_live_data
from features.model_table import MODELS
from features.settings import Settings
from features.snapshots import data_period
from pipelines.home_lock import writes_home
from tiering import load_policy
from tiering.campaigns import OUTCOMES, Campaign, audience_of, load_campaign, parse_campaign, split
from tiering.effects import Effect, bootstrap, cuped, minimum_detectable_effect, welch

MEMBER_COLUMNS = [
    "customer_id",
    "group",
    "tier",
    "benefit",
    "churn_probability",
    "expected_value",
    "growth_potential",
]
TREATMENT_COLUMNS = ["customer_id", "offer", "tier", "benefit", "expected_value", "churn_probability"]
#: Kept with the members and in the treatment list when the snapshot has them.
OPTIONAL_COLUMNS = ["p_order_30d", "expected_next_order_date", "persona", "offers"]
#: Outcomes that are rates or counts get Welch's interval; money gets the bootstrap.
MONEY = ("spend", "margin")
RISK_DECILES = 10


@dataclass(frozen=True)
class Launch:
    campaign: Campaign
    as_of: date
    folder: Path
    treated: int
    control: int
    treatment_file: Path
    already_launched: bool


def campaigns_dir(settings: Settings) -> Path:
    """Where launches and measurements are recorded."""
    return settings.data_dir / "campaigns"


def definition_file(settings: Settings, name: str) -> Path:
    """Where a campaign's YAML lives by default: `<home>/campaigns/<name>.yaml`."""
    return settings.home / "campaigns" / f"{name}.yaml"


@writes_home
def launch(
    settings: Settings,
    name: str,
    as_of: date | None = None,
    definition: Path | None = None,
    output: Path | None = None,
    again: bool = False,
    budget: int | None = None,
    target: str = "all",
) -> Launch:
    """Pick the audience from the tier snapshot, hold out the control group, record and export.

    `target="uplift"` with a `budget` keeps the audience's `budget` customers with the largest uplift
    predicted by the campaign's champion uplift model (`pipelines.uplift`); the control group is then
    held out of those, so the targeted launch is measured like any other."""
    campaign = load_campaign(definition or definition_file(settings, name))
    if campaign.name != name:
        raise InputError(f"{definition}: name: {campaign.name!r}, but campaign {name!r} was asked for")
    policy = load_policy(campaign.policy)
    snapshots = settings.tier_snapshots(policy.name)
    day = snapshots.choose(as_of or campaign.start)
    folder = campaigns_dir(settings) / campaign.name / day.isoformat()
    definition_sha = fingerprint(campaign)
    earlier = launch_dates(settings, campaign.name)
    if day in earlier:
        recorded = _read_launch(folder)
        if recorded["definition_sha256"] != definition_sha:
            raise InputError(
                f"campaign {name} was launched on {day} with another definition; give the changed "
                "campaign a new name"
            )
        _log_launch(settings, recorded)
        treatment = _export_treatment(folder, campaign, output)
        counts = recorded["groups"]
        return Launch(campaign, day, folder, counts["treatment"], counts["control"], treatment, True)
    if earlier and not again:
        raise InputError(
            f"campaign {name} was already launched on {', '.join(map(str, earlier))}; pass --again to launch "
            f"it on {day} too"
        )
    snapshot = snapshots.read(day)
    members = audience_of(campaign, snapshot, policy)
    targeting = {"by": "audience rule"}
    if target == "uplift":
        members, targeting = _top_uplift(settings, campaign, members, day, budget)
    elif target != "all":
        raise InputError(f"--target {target!r}: expected all or uplift")
    held_out = split(campaign.name, members.customer_id, campaign.control_share)
    if (~held_out).sum() < 2 or held_out.sum() < 2:
        raise InputError(
            f"campaign {name}: the audience on {day} has {len(members)} customers, {int(held_out.sum())} "
            "held out: too few to measure anything (at least 2 per group)"
        )
    members["group"] = np.where(held_out, "control", "treatment")
    members["benefit"] = members.tier.map({tier.name: tier.benefit_names for tier in policy.tiers})
    record = {
        "campaign": campaign.model_dump(mode="json"),
        "definition_sha256": definition_sha,
        "as_of": day.isoformat(),
        "launched_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "policy": policy.name,
        "model_versions": {
            name: int(snapshot[entry.version_column].iloc[0])
            for name, entry in MODELS.items()
            if entry.version_column in snapshot and len(snapshot)
        },
        # What answered each model, a baseline included (a model without a champion has no version).
        "model_sources": {
            name: str(snapshot[f"{name}_source"].iloc[0])
            for name in MODELS
            if f"{name}_source" in snapshot and len(snapshot)
        },
        "groups": {"treatment": int((~held_out).sum()), "control": int(held_out.sum())},
        "targeting": targeting,
    }
    write_launch(folder, members[MEMBER_COLUMNS + _optional(members)], record)
    _log_launch(settings, record)
    treatment = _export_treatment(folder, campaign, output)
    return Launch(
        campaign, day, folder, record["groups"]["treatment"], record["groups"]["control"], treatment, False
    )


def _top_uplift(
    settings: Settings, campaign: Campaign, members: pd.DataFrame, day: date, budget: int | None
) -> tuple[pd.DataFrame, dict]:
    from pipelines.uplift import model_name, uplift_scores

    if budget is None or budget < 4:
        raise InputError("--target uplift needs --budget N: how many customers to contact (at least 4)")
    scores = uplift_scores(settings, campaign.name, members, day)
    order = np.lexsort((members.customer_id.to_numpy(), -scores))[:budget]
    chosen = members.iloc[np.sort(order)].reset_index(drop=True)
    return chosen, {
        "by": "uplift",
        "model": model_name(campaign.name),
        "budget": budget,
        "audience": len(members),
    }


def launch_dates(settings: Settings, name: str) -> list[date]:
    """The dates a campaign was launched on, oldest first."""
    folder = campaigns_dir(settings) / name
    if not folder.is_dir():
        return []
    return sorted(
        date.fromisoformat(p.name) for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")
    )


def recorded_launches(settings: Settings) -> Iterator[tuple[dict, dict | None]]:
    """Each launch record in the home (by campaign and date) with its measurement, None if not measured."""
    root = campaigns_dir(settings)
    for path in sorted(root.glob("*/*/launch.json")) if root.is_dir() else []:
        measured = path.with_name("measurement.json")
        yield json.loads(path.read_text()), json.loads(measured.read_text()) if measured.exists() else None


def launches(settings: Settings) -> list[dict]:
    """Every launch recorded in the home, with its measurement when there is one."""
    rows = []
    for record, measurement in recorded_launches(settings):
        primary = None if measurement is None else measurement["primary"]
        rows.append(
            {
                "campaign": record["campaign"]["name"],
                "as_of": record["as_of"],
                "treatment": record["groups"]["treatment"],
                "control": record["groups"]["control"],
                "outcome": record["campaign"]["outcome"],
                "window_ends": (
                    date.fromisoformat(record["as_of"]) + timedelta(days=record["campaign"]["window_days"])
                ).isoformat(),
                "effect": None if primary is None else primary["difference"],
                "low": None if primary is None else primary["low"],
                "high": None if primary is None else primary["high"],
            }
        )
    return rows


@dataclass(frozen=True)
class EndedLaunch:
    """A launch whose measurement window has ended, with every member's outcomes.

    Attributes:
        outcomes: The members (customer_id, group, tier, ...) with retained, orders, spend and margin
            over the window, and the same over the window before the launch (`<outcome>_before`).
    """

    campaign: Campaign
    as_of: date
    folder: Path
    record: dict
    data_through: date
    outcomes: pd.DataFrame


def ended_launch(settings: Settings, name: str, as_of: date | None = None) -> EndedLaunch:
    """Campaign `name`'s launch on `as_of` (default: the latest) and its members' outcomes.

    Raises:
        InputError: the campaign was never launched (on that date), or the orders of its whole window
            are not imported yet.
    """
    dates = launch_dates(settings, name)
    if not dates:
        raise InputError(f"campaign {name} was never launched: run `tierwise campaigns launch {name}` first")
    day = as_of or dates[-1]
    if day not in dates:
        raise InputError(
            f"campaign {name} was not launched on {day} (launches: {', '.join(map(str, dates))})"
        )
    folder = campaigns_dir(settings) / name / day.isoformat()
    record = _read_launch(folder)
    campaign = parse_campaign(record["campaign"], source=str(folder / "launch.json"))
    window_end = day + timedelta(days=campaign.window_days)
    con = open_live_data(settings)
    data_through = data_period(con).last_order.date()
    if data_through + timedelta(days=1) < window_end:
        raise InputError(
            f"campaign {name} launched {day} is measured over {campaign.window_days} days, until {window_end}; "
            f"orders are imported up to {data_through}: measure once orders through {window_end - timedelta(days=1)} "
            "are imported"
        )
    members = pd.read_parquet(folder / "members.parquet")
    return EndedLaunch(campaign, day, folder, record, data_through, _outcomes(con, members, day, campaign))


@writes_home
def measure(settings: Settings, name: str, as_of: date | None = None, seed: int = 0) -> dict:
    """Treated against control on every outcome once the window has ended; writes and returns the record."""
    ended = ended_launch(settings, name, as_of)
    campaign, day, folder, record, outcomes = (
        ended.campaign,
        ended.as_of,
        ended.folder,
        ended.record,
        ended.outcomes,
    )
    window_end = day + timedelta(days=campaign.window_days)
    data_through = ended.data_through
    treated = (outcomes.group == "treatment").to_numpy()
    effects, adjusted, shifted = {}, {}, {}
    for outcome in (campaign.outcome, *campaign.secondary_outcomes):
        during, before = outcomes[outcome].to_numpy(), outcomes[f"{outcome}_before"].to_numpy()
        effects[outcome] = _effect(outcome, during[treated], during[~treated], seed)
        shifted[outcome] = cuped(during, before)
        adjusted[outcome] = welch(shifted[outcome][treated], shifted[outcome][~treated], method="welch+cuped")
    primary = adjusted[campaign.outcome]
    shifted_primary = shifted[campaign.outcome]
    mde = minimum_detectable_effect(shifted_primary[treated], shifted_primary[~treated])
    expected = campaign.expected_lift * abs(primary.control_mean)
    n_treated = int(treated.sum())
    redeemed = int(((outcomes.orders > 0).to_numpy() & treated).sum())
    cost = n_treated * campaign.cost_per_contact + redeemed * campaign.cost_per_redemption
    spend = adjusted["spend"]
    money = {
        "incremental_revenue": spend.difference * n_treated,
        "incremental_revenue_low": spend.low * n_treated,
        "incremental_revenue_high": spend.high * n_treated,
        "incremental_margin": spend.difference * n_treated * campaign.margin_rate,
        "cost": cost,
        "redemptions_assumed": redeemed,
        "roi": (spend.difference * n_treated * campaign.margin_rate - cost) / cost if cost else None,
        "cost_per_incremental_retained_customer": (
            cost / (adjusted["retained"].difference * n_treated)
            if cost and adjusted["retained"].difference > 0
            else None
        ),
    }
    result = {
        "campaign": campaign.name,
        "as_of": day.isoformat(),
        "window_end": window_end.isoformat(),
        "data_through": data_through.isoformat(),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "design": "randomized: control held out by a hash of campaign and customer at launch",
        "outcome": campaign.outcome,
        "primary": primary.as_dict(),
        "outcomes": {
            outcome: {"raw": effects[outcome].as_dict(), "cuped": adjusted[outcome].as_dict()}
            for outcome in effects
        },
        "money": money,
        "power": {
            "minimum_detectable_effect": mde,
            "expected_effect": expected,
            "expected_lift": campaign.expected_lift,
            "enough": mde <= expected,
        },
        "verdict": _verdict(campaign, primary, mde, expected),
        "by_tier": _breakdown(outcomes, treated, campaign.outcome, outcomes.tier.astype(str)),
        "by_churn_risk_decile": _breakdown(
            outcomes, treated, campaign.outcome, _deciles(outcomes.churn_probability.to_numpy())
        ),
    }
    if "planted" in record:  # a planted campaign (`pipelines.plant_campaign`): compare with the truth
        truth = (
            record["planted"][f"true_effect_{campaign.outcome}"]
            if campaign.outcome in ("orders", "spend")
            else None
        )
        result["design"] = record["planted"]["design"]
        result["truth"] = {
            **record["planted"],
            "primary_covered": None if truth is None else primary.low <= truth <= primary.high,
        }
    write_text_atomically(json.dumps(result, indent=1, default=_json_number), folder / "measurement.json")
    return result


OBSERVATIONAL = (
    "observational: the shop chose the recipients (not a random split), so these are differences "
    "between recipients and everyone else, not effects of the campaign"
)


@writes_home
def observe(settings: Settings, campaign_id: str, seed: int = 0) -> dict:
    """Recipients of an imported campaign (tables `campaigns`, `campaign_recipients`) against the other
    customers who ordered in the year before it, over its dates; reported as observational.

    Written to `data/campaigns/imported/<campaign_id>.json` and returned.
    """
    con = open_live_data(settings)
    found = con.execute(
        "SELECT start_date, end_date, campaign_type FROM campaigns WHERE campaign_id = ?", [campaign_id]
    ).fetchall()
    if not found:
        known = [row[0] for row in con.execute("SELECT campaign_id FROM campaigns ORDER BY 1").fetchall()]
        raise InputError(
            f"no imported campaign {campaign_id!r} (campaigns: {', '.join(known[:30]) or 'none'})"
        )
    start, end, kind = found[0][0].date(), found[0][1].date(), found[0][2]
    window = max(7, min(366, (end - start).days + 1))
    data_through = data_period(con).last_order.date()
    if data_through < end:
        raise InputError(f"campaign {campaign_id} runs until {end}; orders are imported up to {data_through}")
    definition = Campaign(name=f"imported-{campaign_id}", offer=str(kind or "imported"), window_days=window)
    year_before = sql_string((start - timedelta(days=365)).isoformat())
    members = con.execute(
        f"""SELECT DISTINCT o.customer_id,
                   CASE WHEN r.customer_id IS NULL THEN 'control' ELSE 'treatment' END AS "group"
            FROM orders o LEFT JOIN campaign_recipients r
              ON r.customer_id = o.customer_id AND r.campaign_id = {sql_string(campaign_id)}
            WHERE o.ordered_at >= {year_before}::TIMESTAMPTZ AND o.ordered_at < {sql_string(start.isoformat())}::TIMESTAMPTZ
            ORDER BY 1"""
    ).df()
    frame = _outcomes(con, members, start, definition)
    treated = (frame.group == "treatment").to_numpy()
    if treated.sum() < 2 or (~treated).sum() < 2:
        raise InputError(
            f"campaign {campaign_id}: {int(treated.sum())} recipients ordered in the year before it"
        )
    outcomes = {}
    for outcome in OUTCOMES:
        during, before = frame[outcome].to_numpy(), frame[f"{outcome}_before"].to_numpy()
        shifted = cuped(during, before)
        outcomes[outcome] = {
            "raw": _effect(outcome, during[treated], during[~treated], seed).as_dict(),
            "adjusted_for_the_window_before": welch(
                shifted[treated], shifted[~treated], "welch+cuped"
            ).as_dict(),
        }
    spend = outcomes["spend"]["adjusted_for_the_window_before"]
    result = {
        "campaign": campaign_id,
        "type": kind,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "design": OBSERVATIONAL,
        "recipients": int(treated.sum()),
        "others": int((~treated).sum()),
        "outcomes": outcomes,
        "summary": (
            f"recipients spent {spend['difference']:+.4g} per customer against the others over "
            f"{start} to {end} (95% CI {spend['low']:+.4g} to {spend['high']:+.4g}, adjusted for the "
            f"window before); {OBSERVATIONAL}"
        ),
    }
    write_text_atomically(
        json.dumps(result, indent=1, default=_json_number),
        campaigns_dir(settings) / "imported" / f"{campaign_id}.json",
    )
    return result


def _outcomes(con, members: pd.DataFrame, day: date, campaign: Campaign) -> pd.DataFrame:
    """Per member: retained, orders, spend and margin over the window, and the same over the window
    before the launch (the CUPED covariates)."""
    window = timedelta(days=campaign.window_days)
    start, end, before = (sql_string(d.isoformat()) for d in (day, day + window, day - window))
    con.register("campaign_members", members[["customer_id"]])
    totals = con.execute(
        f"""SELECT m.customer_id,
               count(o.order_id) FILTER (WHERE o.ordered_at >= {start}::TIMESTAMPTZ) AS orders,
               coalesce(sum(o.amount) FILTER (WHERE o.ordered_at >= {start}::TIMESTAMPTZ), 0) AS spend,
               count(o.order_id) FILTER (WHERE o.ordered_at < {start}::TIMESTAMPTZ) AS orders_before,
               coalesce(sum(o.amount) FILTER (WHERE o.ordered_at < {start}::TIMESTAMPTZ), 0) AS spend_before
           FROM campaign_members m
           LEFT JOIN orders o ON o.customer_id = m.customer_id
               AND o.ordered_at >= {before}::TIMESTAMPTZ AND o.ordered_at < {end}::TIMESTAMPTZ
           GROUP BY m.customer_id"""
    ).df()
    con.unregister("campaign_members")
    frame = members.merge(totals, on="customer_id", how="left", validate="one_to_one")
    for column in ("orders", "spend", "orders_before", "spend_before"):
        frame[column] = frame[column].astype(float)
    frame["retained"] = (frame.orders > 0).astype(float)
    frame["retained_before"] = (frame.orders_before > 0).astype(float)
    frame["margin"] = frame.spend * campaign.margin_rate
    frame["margin_before"] = frame.spend_before * campaign.margin_rate
    return frame


def _effect(outcome: str, treated: np.ndarray, control: np.ndarray, seed: int) -> Effect:
    return bootstrap(treated, control, seed=seed) if outcome in MONEY else welch(treated, control)


def _verdict(campaign: Campaign, primary: Effect, mde: float, expected: float) -> str:
    what = f"{campaign.outcome} per treated customer"
    interval = f"{primary.difference:+.4g} (95% CI {primary.low:+.4g} to {primary.high:+.4g})"
    if primary.excludes_zero:
        direction = "raised" if primary.difference > 0 else "lowered"
        return f"the campaign {direction} {what} by {interval}"
    if mde > expected:
        return (
            f"no effect detected on {what}: {interval}; the groups are too small to detect the expected "
            f"lift of {campaign.expected_lift:.0%} ({expected:.4g}); they detect {mde:.4g} or more"
        )
    return f"no effect detected on {what}: {interval}; an effect of {mde:.4g} or more would have been seen"


def _breakdown(
    frame: pd.DataFrame, treated: np.ndarray, outcome: str, groups: pd.Series | np.ndarray
) -> list[dict]:
    rows = []
    groups = pd.Series(np.asarray(groups), index=frame.index)
    values = frame[outcome].to_numpy()
    for name in sorted(groups.unique()):
        inside = (groups == name).to_numpy()
        t, c = values[inside & treated], values[inside & ~treated]
        row = {"group": str(name), "treatment": len(t), "control": len(c)}
        if len(t) >= 2 and len(c) >= 2:
            effect = welch(t, c)
            row |= {"difference": effect.difference, "low": effect.low, "high": effect.high}
        else:
            row |= {"difference": None, "low": None, "high": None}
        rows.append(row)
    return rows


def _deciles(churn: np.ndarray) -> np.ndarray:
    """1 (lowest churn risk) to 10 (highest) among the members."""
    ranks = pd.Series(churn).rank(method="first").to_numpy()
    return np.ceil(ranks * RISK_DECILES / len(churn)).astype(int)


def fingerprint(campaign: Campaign) -> str:
    return hashlib.sha256(json.dumps(campaign.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


def _read_launch(folder: Path) -> dict:
    return json.loads((folder / "launch.json").read_text())


def write_launch(folder: Path, members: pd.DataFrame, record: dict) -> None:
    """Both files into a fresh folder beside the target, flushed, then renamed into place at once."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    draft = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        members.to_parquet(draft / "members.parquet", index=False)
        (draft / "launch.json").write_text(json.dumps(record, indent=1))
        for path in (draft / "members.parquet", draft / "launch.json", draft):
            fsync_path(path)
        os.rename(draft, folder)
    except BaseException:
        shutil.rmtree(draft, ignore_errors=True)
        raise
    fsync_path(folder.parent)


def _log_launch(settings: Settings, record: dict) -> None:
    """Append the launch to the campaign log once (a repeated launch finds its line and adds none)."""
    log = campaigns_dir(settings) / "launches.jsonl"
    key = (record["campaign"]["name"], record["as_of"])
    if log.exists():
        for line in log.read_text().splitlines():
            entry = json.loads(line)
            if (entry["campaign"], entry["as_of"]) == key:
                return
    entry = {
        "campaign": key[0],
        "as_of": key[1],
        "launched_at": record["launched_at"],
        "policy": record["policy"],
        "model_versions": record["model_versions"],
        "groups": record["groups"],
        "definition_sha256": record["definition_sha256"],
    }
    with log.open("a") as handle:
        handle.write(json.dumps(entry) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _export_treatment(folder: Path, campaign: Campaign, output: Path | None) -> Path:
    members = pd.read_parquet(folder / "members.parquet")
    treatment = members[members.group == "treatment"].assign(offer=campaign.offer)
    treatment = treatment[TREATMENT_COLUMNS + _optional(treatment)]
    return write_frame_atomically(treatment, output or folder / "treatment.csv")


def _optional(frame: pd.DataFrame) -> list[str]:
    return [column for column in OPTIONAL_COLUMNS if column in frame and frame[column].notna().any()]


def _json_number(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
