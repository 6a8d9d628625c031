"""The monitoring overview: the one page ML-ops open first, linking to Evidently's detailed pages.

Per model: the champion's version, its grade, how many features drifted (and which of its top
features), how far its predictions moved, its alerts, and the series of its real quality over the
matured snapshots against the training promise and the best baseline. Then tier shares against the
previous snapshot and the training period. Self-contained: plotly.js inline, no network.

As the tier report, the page keeps a hidden `#render-status` element that its last script fills once
the browser has drawn the charts (`data-charts`, `data-rendered`, `data-errors`), so a headless
browser can check that every chart rendered without a script error.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import date

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from monitoring.drift import DriftResult
from monitoring.health import ModelHealth
from monitoring.thresholds import Thresholds
from tiering.reports.render_check import ERROR_CAPTURE, render_status

GRADE_COLORS = {"Excellent": "#1a7f37", "Good": "#4c9a2a", "Fair": "#b58900", "Poor": "#c62828"}


def quality_chart(result: ModelHealth) -> go.Figure | None:
    """The primary metric of each matured snapshot, the training test metric and the best baseline."""
    graded = [q for q in result.quality if q.customers]
    if not graded:
        return None
    days = [q.as_of.isoformat() for q in graded]
    metric = graded[0].primary_metric
    figure = go.Figure()
    figure.add_scatter(x=days, y=[q.primary for q in graded], mode="lines+markers", name=f"model {metric}")
    best = [q.baselines[q.best_baseline][metric] if q.best_baseline else None for q in graded]
    figure.add_scatter(x=days, y=best, mode="lines+markers", name="best baseline", line={"dash": "dot"})
    if graded[-1].training_metric is not None:
        figure.add_scatter(
            x=days,
            y=[q.training_metric for q in graded],
            mode="lines",
            name="at training (test cutoff)",
            line={"dash": "dash"},
        )
    figure.update_layout(
        title=f"{result.model}: {metric} once outcomes are known",
        height=320,
        margin={"t": 50, "b": 40},
        xaxis_title="snapshot date",
        yaxis_title=metric,
    )
    return figure


def render_overview(
    as_of: date,
    policy: str,
    health: Mapping[str, ModelHealth],
    tier_drift: Mapping[str, DriftResult],
    alerts: Sequence[dict],
    thresholds: Thresholds,
    retraining: Sequence[dict] = (),
) -> str:
    """The overview page as a complete HTML document (links are relative to its folder)."""
    rows = []
    charts = []
    for name, result in health.items():
        top = result.top_drifted(thresholds)
        worst = ", ".join(f"{c.column} ({c.score:.2f})" for c in result.features.worst(3) if c.drifted) or "–"
        grade = result.grade
        color = GRADE_COLORS.get(grade, "#555")
        rows.append(
            "<tr>"
            f"<td><b>{html.escape(name)}</b> v{result.version}</td>"
            f'<td style="color:{color}"><b>{html.escape(grade)}</b></td>'
            f"<td>{len(result.features.drifted)} / {len(result.features.columns)} ({result.features.share:.0%})</td>"
            f"<td>{html.escape(', '.join(top) or '–')}</td>"
            f"<td>{html.escape(worst)}</td>"
            f"<td>{result.prediction_mean:.4g} vs {result.reference_mean:.4g} ({result.mean_shift:+.0%})</td>"
            f'<td><a href="{html.escape(name)}/{as_of}.html">drift page</a> · '
            f'<a href="{html.escape(name)}/{as_of}.json">JSON</a></td>'
            "</tr>"
        )
        figure = quality_chart(result)
        if figure is not None:
            charts.append(
                figure.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False})
            )
    tier_rows = "".join(
        f"<tr><td>{html.escape(label)}</td><td>{c.method}</td><td>{c.score:.3f}</td>"
        f"<td>{'drifted' if c.drifted else 'stable'}</td></tr>"
        for label, result in tier_drift.items()
        for c in result.columns
    )
    alert_items = (
        "".join(
            f"<li><b>[{html.escape(a['severity'])}] {html.escape(a['rule'])}</b>: {html.escape(a['message'])} "
            f"<i>Action: {html.escape(a['action'])}.</i></li>"
            for a in alerts
        )
        or "<li>No alert.</li>"
    )
    quality_note = "".join(charts) or "<p>No snapshot has reached the end of its horizon yet.</p>"
    retrain_section = ""
    if retraining:
        items = "".join(
            f"<li><b>{html.escape(r['model'])}</b> v{r['version']} "
            f"{'became champion' if r['promoted'] else 'was registered; the champion stays'}: "
            f"{html.escape(r['reason'])} (after {html.escape(', '.join(r['alerts']))})</li>"
            for r in retraining
        )
        retrain_section = f"<h2>Retraining after the alerts</h2><ul>{items}</ul>"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Tierwise model monitoring — {as_of}</title>
{ERROR_CAPTURE}
<script>{get_plotlyjs()}</script>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1180px; color: #222; }}
table {{ border-collapse: collapse; width: 100%; margin: 8px 0 24px; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 6px 8px; text-align: left; font-size: 14px; }}
th {{ background: #f4f4f4; }}
</style>
</head>
<body>
<h1>Model monitoring — {as_of}</h1>
<p>Tier policy {html.escape(policy)}. Features and predictions of the {as_of} snapshot against each champion's
training reference; real quality of every earlier snapshot whose horizon has ended. Grades: lift of the primary
metric over the best baseline on the same customers (Excellent ≥ +0.03, Good ≥ +0.01, Fair ≥ −0.01, Poor below;
at most Fair after a drop of more than {thresholds.quality_drop:g} since training).</p>
<h2>Models</h2>
<table>
<tr><th>model</th><th>grade</th><th>drifted features</th><th>top features drifted</th><th>worst drift</th>
<th>mean prediction vs reference</th><th>details</th></tr>
{"".join(rows)}
</table>
<h2>Alerts</h2>
<ul>{alert_items}</ul>
{retrain_section}
<h2>Real quality over time</h2>
{quality_note}
<h2>Tier shares</h2>
<table><tr><th>compared with</th><th>test</th><th>distance / p-value</th><th>verdict</th></tr>{tier_rows}</table>
{render_status(len(charts))}
</body>
</html>
"""
