"""The operations report: one self-contained HTML page per tier snapshot, readable offline in any browser.

Everything on the page comes from `kpis` and `alerts` (the same numbers the command line prints):
tier distribution, migration since the previous snapshot, each tier's share of past spend and of
predicted value, spend per customer, valuable customers at risk across every snapshot, and the
alerts. plotly.js is embedded once in the page, so it needs no server and no network.

The page keeps a hidden `#render-status` element that its last script fills once the browser has
drawn the charts (`data-charts`, `data-rendered`, `data-errors`), so a headless browser can check
that every chart rendered without a script error.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from datetime import date
from typing import NamedTuple

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from features.model_table import MODEL_TABLE
from tiering.policy import Policy
from tiering.reports import charts
from tiering.reports.kpis import (
    at_risk_top_tier,
    flow_rates,
    migration_matrix,
    offers_by_tier,
    persona_by_tier,
    tier_summary,
    top_tiers,
)
from tiering.reports.render_check import ERROR_CAPTURE, render_status
from tiering.risk import AT_RISK_CHURN

#: Value tiers, from the best, that count as top tiers (as the default `top_tier_at_risk` alert rule).
TOP_RANKS = 2
PLOT_CONFIG = {"displaylogo": False, "responsive": True}


def model_sources(snapshot: pd.DataFrame) -> dict[str, str]:
    """What answered each model in a tier snapshot, in words: `churn champion v3`, or `churn baseline:
    btyd_p_no_order` for a model without a champion (`<model>_source`; older snapshots only have
    `<model>_version`)."""
    found = {}
    for entry in MODEL_TABLE:
        if not len(snapshot):
            break
        if f"{entry.name}_source" in snapshot:
            found[entry.name] = f"{entry.name} {snapshot[f'{entry.name}_source'].iloc[0]}"
        elif entry.version_column in snapshot:
            found[entry.name] = f"{entry.name} v{int(snapshot[entry.version_column].iloc[0])}"
    return found


def at_risk_history(
    snapshots: Mapping[date, pd.DataFrame],
    policy: Policy,
    threshold: float = AT_RISK_CHURN,
    top_ranks: int = TOP_RANKS,
) -> pd.DataFrame:
    """How many top-tier customers were at risk of churning in each snapshot (`at_risk_top_tier`).

    Args:
        snapshots: Tier snapshots by date: customer_id, tier, expected_value, churn_probability.
        policy: The policy the snapshots were cut by.
        threshold: Lowest churn probability that counts as at risk.
        top_ranks: How many value tiers, from the best, count as top tiers.

    Returns:
        One row per date (index `as_of`, ascending), one column of counts per top tier.
    """
    tiers = top_tiers(policy, top_ranks)
    rows = {
        day: at_risk_top_tier(snapshots[day], policy, threshold, top_ranks)
        .tier.value_counts()
        .reindex(tiers, fill_value=0)
        for day in sorted(snapshots)
    }
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=tiers).astype("int64")
    frame.index.name = "as_of"
    return frame


def render_report(
    current: pd.DataFrame,
    policy: Policy,
    *,
    as_of: date,
    previous: pd.DataFrame | None = None,
    previous_as_of: date | None = None,
    actual_spend: pd.Series | None = None,
    history: pd.DataFrame | None = None,
    alerts: Iterable[dict] = (),
    model_health: Iterable[dict] = (),
    campaigns: Iterable[dict] = (),
    persona_profile: pd.DataFrame | None = None,
) -> str:
    """The operations report of one tier snapshot as a complete HTML document.

    Args:
        current: The snapshot: customer_id, tier, expected_value, churn_probability; horizon_days
            and the `<model>_version` columns are shown when present.
        policy: The policy the snapshot was cut by.
        as_of: The snapshot's date.
        previous: The snapshot before it (None: the migration section says there is none).
        previous_as_of: Its date.
        actual_spend: What each customer spent over the past horizon, by customer_id (see
            `tier_summary`); without it the page shows predictions only.
        history: `at_risk_history` over every snapshot up to `as_of` (default: this snapshot only).
        alerts: Records of `evaluate_alerts`.
        model_health: Per model, what monitoring found on this date (model, version, grade,
            drifted_share, alerts, and `link`, the monitoring page relative to this page's folder);
            empty: the section says monitoring has not run.
        campaigns: Measured campaigns launched on this policy up to `as_of` (campaign, as_of,
            outcome, treatment, control, difference, low, high, verdict); none: no section.
        persona_profile: The champion personas' centres (index: name; columns: habits in words; values
            in standard deviations); with a `persona` column in `current`, the Personas section shows
            persona × tier and this profile. None: the section says personas are not fitted.

    Returns:
        The page, with plotly.js inline and no external reference.
    """
    colors = charts.tier_colors(policy)
    horizon = int(current.horizon_days.iloc[0]) if "horizon_days" in current and len(current) else None
    summary = tier_summary(current, policy, actual_spend)
    if history is None:
        history = at_risk_history({as_of: current}, policy)
    alerts = list(alerts)
    sections = [
        _Section(
            "Tier distribution",
            "How many customers each tier holds today.",
            charts.distribution_chart(summary, colors),
            _summary_table(summary, colors, horizon),
        ),
        _migration_section(previous, current, policy, colors, previous_as_of, as_of),
        _Section(
            "Value contribution by tier",
            "Each tier's share of the customers, of what they really spent over the past horizon and "
            "of what the models expect them to spend over the next one.",
            charts.value_chart(summary, colors, horizon),
        ),
        _Section(
            "Spend per customer (ARPU) by tier",
            "Average spend per customer: actual over the past horizon (hatched) beside the prediction "
            "for the next horizon (solid).",
            charts.arpu_chart(summary, colors, horizon),
        ),
        _Section(
            "Top-tier customers at risk over time",
            f"Customers of {' and '.join(history.columns)} whose churn probability is "
            f"{AT_RISK_CHURN:.0%} or more, in every snapshot up to this one.",
            charts.at_risk_chart(history, colors, AT_RISK_CHURN),
        ),
        *_persona_sections(current, policy, colors, persona_profile),
    ]
    title = f"Tier operations report · {policy.name} · {as_of}"
    body = _header(title, policy, current, summary, history, alerts, horizon, previous_as_of)
    body += "\n".join(_figure_section(section) for section in sections) + _alerts_section(alerts)
    body += _model_health_section(list(model_health))
    body += _offers_section(offers_by_tier(current, policy), colors)
    body += _campaigns_section(list(campaigns))
    return _document(title, body, sum(1 for section in sections if section.figure is not None))


class _Section(NamedTuple):
    title: str
    text: str
    figure: go.Figure | None = None
    after: str = ""


def _migration_section(
    previous: pd.DataFrame | None,
    current: pd.DataFrame,
    policy: Policy,
    colors: dict[str, str],
    previous_as_of: date | None,
    as_of: date,
) -> _Section:
    title = "Migration since the previous snapshot"
    if previous is None:
        return _Section(
            title,
            f"There is no earlier {policy.name} snapshot before {as_of}, so there is no migration to "
            "show yet; it appears from the second scored date on.",
        )
    matrix = migration_matrix(previous, current, policy)
    text = (
        f"Where the customers of {previous_as_of} (left) are on {as_of} (right); "
        "“(new)” customers were not in the previous snapshot, “(gone)” ones are not in this one."
    )
    figure = charts.migration_chart(matrix, colors, str(previous_as_of), str(as_of))
    return _Section(title, text, figure, _flow_table(flow_rates(matrix), colors))


def _persona_sections(
    current: pd.DataFrame, policy: Policy, colors: dict[str, str], profile: pd.DataFrame | None
) -> list[_Section]:
    table = persona_by_tier(current, policy)
    if table.empty:
        return [_Section("Personas", "No personas yet: `tierwise personas fit`, then score again.")]
    tiers = [tier for tier in policy.tier_names if tier in table]
    sections = [
        _Section(
            "Personas by tier",
            "How each persona (customers who shop alike) spreads over the tiers today: a message is written "
            "per persona, a benefit per tier.",
            charts.persona_tier_chart(table, colors, tiers),
            _persona_table(table, tiers),
        )
    ]
    if profile is not None and not profile.empty:
        sections.append(
            _Section(
                "Persona profiles",
                "What sets each persona apart: the centre of its habits in standard deviations from the "
                "average active customer (shares in local time, money and counts on a log scale).",
                charts.persona_profile_chart(profile),
            )
        )
    return sections


def _persona_table(table: pd.DataFrame, tiers: list[str]) -> str:
    head = "<th>Persona</th><th>Customers</th><th>Mean expected value</th>" + "".join(
        f"<th>{html.escape(t)}</th>" for t in tiers
    )
    rows = "".join(
        f"<tr><td>{html.escape(str(persona))}</td><td>{values.customers:,.0f}</td>"
        f"<td>{_format(values.mean_expected_value, '{:,.2f}')}</td>"
        + "".join(f"<td>{values[t]:,.0f}</td>" for t in tiers)
        + "</tr>"
        for persona, values in table.iterrows()
    )
    return f'<table class="numbers"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def _figure_section(section: _Section) -> str:
    body = ""
    if section.figure is not None:
        body = section.figure.to_html(full_html=False, include_plotlyjs=False, config=PLOT_CONFIG)
    return (
        f'<section><h2>{html.escape(section.title)}</h2><p class="lead">{html.escape(section.text)}</p>'
        f"{body}{section.after}</section>"
    )


def _header(
    title: str,
    policy: Policy,
    current: pd.DataFrame,
    summary: pd.DataFrame,
    history: pd.DataFrame,
    alerts: list[dict],
    horizon: int | None,
    previous_as_of: date | None,
) -> str:
    span = f"{horizon} days" if horizon else "the horizon"
    at_risk = f"{int(history.iloc[-1].sum()):,}" if len(history) else "0"
    if len(history) > 1:
        change = int(history.iloc[-1].sum() - history.iloc[-2].sum())
        moved = f"{change:+,}" if change else "unchanged"
        at_risk += f' <span class="change">{moved} since {history.index[-2]}</span>'
    critical = sum(1 for alert in alerts if alert.get("severity") == "critical")
    cards = [
        ("Customers", f"{int(summary.customers.sum()):,}"),
        (f"Predicted value, next {span}", f"{summary.predicted_value_total.sum():,.0f}"),
        ("Top-tier customers at risk", at_risk),
        ("Alerts", f"{len(alerts)}" + (f" ({critical} critical)" if critical else "")),
    ]
    models = ", ".join(model_sources(current).values())
    facts = [f"Policy <b>{html.escape(policy.name)}</b>"]
    facts.append(f"previous snapshot {previous_as_of}" if previous_as_of else "no previous snapshot")
    if models:
        facts.append(f"models {html.escape(models)}")
    card_html = "".join(
        f'<div class="card"><div class="value">{value}</div><div class="label">{html.escape(label)}</div></div>'
        for label, value in cards
    )
    return (
        f"<header><h1>{html.escape(title)}</h1>"
        f'<p class="meta">{" · ".join(facts)}</p>'
        f'<p class="meta">{html.escape(policy.description.strip())}</p></header>'
        f'<div class="cards">{card_html}</div>'
    )


def _summary_table(summary: pd.DataFrame, colors: dict[str, str], horizon: int | None) -> str:
    span = f"{horizon} d" if horizon else "horizon"
    columns = [
        ("customers", "Customers", "{:,.0f}"),
        ("share", "Share", "{:.1%}"),
        ("predicted_value_share", f"Predicted value share (next {span})", "{:.1%}"),
        ("predicted_arpu", f"Predicted ARPU (next {span})", "{:,.2f}"),
        ("actual_spend_share", f"Actual spend share (past {span})", "{:.1%}"),
        ("actual_arpu", f"Actual ARPU (past {span})", "{:,.2f}"),
        ("mean_churn_probability", "Mean churn probability", "{:.1%}"),
        ("risk_ge_50", "Churn ≥ 50%", "{:,.0f}"),
        ("benefits", "Benefits", "{}"),
        ("benefit_cost_total", "Benefit cost", "{:,.0f}"),
    ]
    columns = [column for column in columns if column[0] in summary]
    head = "<th>Tier</th>" + "".join(f"<th>{html.escape(label)}</th>" for _, label, _ in columns)
    rows = []
    for tier, values in summary.iterrows():
        cells = "".join(f"<td>{_format(values[name], fmt)}</td>" for name, _, fmt in columns)
        rows.append(f"<tr><td>{_swatch(str(tier), colors)}</td>{cells}</tr>")
    return f'<table class="numbers"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _flow_table(flows: pd.DataFrame, colors: dict[str, str]) -> str:
    head = "<th>Previous tier</th><th>Customers</th><th>Stayed</th><th>Moved up</th><th>Moved down</th><th>Left</th>"
    rows = []
    for tier, values in flows.iterrows():
        rates = "".join(f"<td>{_format(values[c], '{:.1%}')}</td>" for c in ("stayed", "up", "down", "left"))
        rows.append(f"<tr><td>{_swatch(str(tier), colors)}</td><td>{values.customers:,.0f}</td>{rates}</tr>")
    return f'<table class="numbers"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _offers_section(offered: pd.DataFrame, colors: dict[str, str]) -> str:
    """Per tier, the categories offered to most of its customers (from the snapshot's offers)."""
    if offered.empty:
        return ""
    rows = "".join(
        f"<tr><td>{_swatch(str(row.tier), colors)}</td><td>{html.escape(str(row.item))}</td>"
        f"<td>{row.customers:,.0f}</td><td>{row.share:.1%}</td></tr>"
        for row in offered.itertuples(index=False)
    )
    return (
        '<section id="offers"><h2>What to offer, by tier</h2><p class="lead">The categories offered to most '
        "customers of each tier: basket companions of their staples and what their persona and the tier "
        "above buy, never what they already buy often.</p>"
        '<table class="numbers"><thead><tr><th>Tier</th><th>Category</th><th>Customers offered</th>'
        f"<th>Share of tier</th></tr></thead><tbody>{rows}</tbody></table></section>"
    )


def _campaigns_section(measured: list[dict]) -> str:
    """Each measured campaign: what it changed per treated customer, with the 95% interval."""
    if not measured:
        return ""
    rows = "".join(
        f"<tr><td>{html.escape(m['campaign'])}</td><td>{html.escape(m['as_of'])}</td>"
        f"<td>{m['treatment']:,} / {m['control']:,}</td><td>{html.escape(m['outcome'])}</td>"
        f"<td>{m['difference']:+,.2f} ({m['low']:+,.2f} to {m['high']:+,.2f})</td>"
        f"<td>{html.escape(m['verdict'])}</td></tr>"
        for m in measured
    )
    return (
        '<section id="campaigns"><h2>Campaigns</h2><p class="lead">Measured campaigns: treated against the '
        "held-out control group, per treated customer, with the 95% interval (CUPED-adjusted). "
        "<code>tierwise campaigns measure NAME --format json</code> has every outcome and the breakdowns.</p>"
        '<table class="alerts"><thead><tr><th>Campaign</th><th>Launched</th><th>Treated / control</th>'
        "<th>Outcome</th><th>Effect (95% CI)</th><th>Verdict</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
    )


def _model_health_section(models: list[dict]) -> str:
    """Grade and drift verdict per model, linking to the monitoring pages."""
    if not models:
        lead = "Monitoring has not run on this date yet (`tierwise monitor`)."
        return f'<section id="model-health"><h2>Model health</h2><p class="lead">{lead}</p></section>'
    rows = "".join(
        f"<tr><td>{html.escape(str(m['model']))} v{m['version']}</td><td>{html.escape(str(m['grade']))}</td>"
        f"<td>{m['drifted_share']:.0%} of features drifted</td><td>{m['alerts']}</td>"
        f'<td><a href="{html.escape(str(m["link"]))}">monitoring page</a></td></tr>'
        for m in models
    )
    return (
        '<section id="model-health"><h2>Model health</h2><p class="lead">Grade of each model on the '
        "snapshots whose outcomes are known (lift over the best baseline), and drift of its features "
        "against its training reference.</p>"
        '<table class="alerts"><thead><tr><th>Model</th><th>Grade</th><th>Drift</th><th>Alerts</th>'
        f"<th></th></tr></thead><tbody>{rows}</tbody></table></section>"
    )


def _alerts_section(alerts: list[dict]) -> str:
    lead = (
        f"{len(alerts)} alert{'s' if len(alerts) != 1 else ''} fired on this snapshot."
        if alerts
        else "No alert fired on this snapshot."
    )
    rows = []
    for alert in alerts:
        severity = html.escape(str(alert.get("severity", "")))
        ids = alert.get("details", {}).get("customer_ids") or []
        listed = (
            f"<details><summary>{len(ids)} customer ids</summary>{html.escape(', '.join(map(str, ids)))}</details>"
            if ids
            else ""
        )
        rows.append(
            f'<tr><td><span class="badge {severity}">{severity}</span></td>'
            f"<td>{html.escape(str(alert.get('rule', '')))}</td>"
            f"<td>{html.escape(str(alert.get('message', '')))}{listed}</td></tr>"
        )
    table = (
        '<table class="alerts"><thead><tr><th>Severity</th><th>Rule</th><th>Message</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
        if rows
        else ""
    )
    return f'<section id="alerts"><h2>Alerts</h2><p class="lead">{lead}</p>{table}</section>'


def _swatch(tier: str, colors: dict[str, str]) -> str:
    return f'<span class="swatch" style="background:{colors.get(tier, "#999")}"></span>{html.escape(tier)}'


def _format(value: float | str, fmt: str) -> str:
    if isinstance(value, str):
        return html.escape(value) or "–"
    return "–" if pd.isna(value) else fmt.format(value)


def _document(title: str, body: str, charts_count: int) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
{ERROR_CAPTURE}
<script>{get_plotlyjs()}</script>
<style>{_CSS}</style>
</head>
<body>
<main>
{body}
</main>
{render_status(charts_count)}
</body>
</html>
"""


_CSS = """
body { margin: 0; background: #f4f6f8; color: #1f2933;
  font-family: system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 28px 32px 48px; }
header h1 { font-size: 26px; margin: 0 0 6px; }
.meta { margin: 2px 0; color: #52606d; font-size: 14px; }
.cards { display: grid; grid-template-columns: repeat(4, 1fr); gap: 14px; margin: 20px 0; }
.card { background: #fff; border-radius: 10px; padding: 14px 18px; box-shadow: 0 1px 3px rgba(0,0,0,.08); }
.card .value { font-size: 26px; font-weight: 650; }
.card .change { font-size: 14px; font-weight: 500; color: #52606d; }
.card .label { color: #52606d; font-size: 13px; margin-top: 2px; }
section { background: #fff; border-radius: 10px; padding: 18px 22px; margin: 0 0 18px;
  box-shadow: 0 1px 3px rgba(0,0,0,.08); }
section h2 { font-size: 19px; margin: 0 0 4px; }
.lead { color: #52606d; margin: 0 0 10px; font-size: 14px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; margin-top: 8px; }
td:first-child { white-space: nowrap; }
th, td { padding: 7px 10px; border-bottom: 1px solid #e4e7eb; text-align: left; vertical-align: top; }
th { background: #f8f9fa; font-weight: 600; color: #3e4c59; }
table.numbers td:not(:first-child), table.numbers th:not(:first-child) { text-align: right;
  font-variant-numeric: tabular-nums; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 3px; margin-right: 8px;
  vertical-align: -1px; }
.badge { display: inline-block; padding: 2px 8px; border-radius: 10px; font-size: 12px; font-weight: 600;
  text-transform: uppercase; }
.badge.critical { background: #fde2e1; color: #9b2226; }
.badge.warning { background: #fff1d6; color: #8a5a00; }
details { margin-top: 6px; color: #52606d; font-size: 13px; }
summary { cursor: pointer; }
"""
