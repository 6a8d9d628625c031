"""The charts of the operations report, each a plotly figure built from a KPI table of `kpis`.

Every chart colours a tier the same way (`tier_colors`), so Gold is the same gold in the
distribution, the migration flows, the value shares, the ARPU bars and the at-risk history.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from tiering.policy import Policy
from tiering.reports.kpis import GONE_COLUMN, NEW_ROW

#: Colours of the preset tiers' names; other names take `FALLBACK_COLORS` by rank.
NAMED_COLORS = {
    "Diamond": "#3d7ea6",
    "Platinum": "#6a4c93",
    "Gold": "#d4a017",
    "Silver": "#8d99ae",
    "Bronze": "#b0703c",
    "New": "#2a9d8f",
    "Dormant": "#e76f51",
    "Churned": "#9b2226",
}
FALLBACK_COLORS = ["#264653", "#2a9d8f", "#e9c46a", "#f4a261", "#e76f51", "#8ab17d", "#6d597a", "#b56576"]
OUTSIDE_COLOR = "#bfc5cc"  # "(new)" and "(gone)" in the migration chart
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"


def tier_colors(policy: Policy) -> dict[str, str]:
    """A colour per tier of `policy`, plus grey for the migration chart's "(new)" and "(gone)"."""
    colors = {
        tier: NAMED_COLORS.get(tier, FALLBACK_COLORS[rank % len(FALLBACK_COLORS)])
        for rank, tier in enumerate(policy.tier_names)
    }
    return colors | {NEW_ROW: OUTSIDE_COLOR, GONE_COLUMN: OUTSIDE_COLOR}


def distribution_chart(summary: pd.DataFrame, colors: dict[str, str]) -> go.Figure:
    """Customers per tier (bars in policy order), labelled with count and share.

    Args:
        summary: `tier_summary` output (customers, share).
        colors: `tier_colors` of the policy.
    """
    tiers = summary.index.tolist()
    figure = go.Figure(
        go.Bar(
            x=tiers,
            y=summary.customers,
            marker_color=[colors[t] for t in tiers],
            text=[f"{c:,}<br>{s:.1%}" for c, s in zip(summary.customers, summary.share, strict=True)],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{x}: %{y:,} customers<extra></extra>",
        )
    )
    figure.update_layout(xaxis_title="Tier", yaxis_title="Customers", showlegend=False)
    return _styled(figure, height=380)


def migration_chart(matrix: pd.DataFrame, colors: dict[str, str], before: str, after: str) -> go.Figure:
    """Flows between two snapshots as a Sankey diagram: previous tiers left, current tiers right.

    Args:
        matrix: `migration_matrix` output (rows previous tier and "(new)", columns tier and "(gone)").
        colors: `tier_colors` of the policy.
        before: Label of the previous snapshot (its date), shown above the left column.
        after: Label of the current snapshot, shown above the right column.
    """
    left = [name for name in matrix.index if matrix.loc[name].sum() > 0]
    right = [name for name in matrix.columns if matrix[name].sum() > 0]
    labels = [f"{name} · {matrix.loc[name].sum():,}" for name in left]
    labels += [f"{name} · {matrix[name].sum():,}" for name in right]
    sources, targets, values, link_colors = [], [], [], []
    for i, row in enumerate(left):
        for j, column in enumerate(right):
            if matrix.loc[row, column] > 0:
                sources.append(i)
                targets.append(len(left) + j)
                values.append(int(matrix.loc[row, column]))
                link_colors.append(_transparent(colors[row], 0.4))
    sizes = [matrix.loc[name].sum() for name in left] + [matrix[name].sum() for name in right]
    y = _stacked_centers(sizes[: len(left)]) + _stacked_centers(sizes[len(left) :])
    figure = go.Figure(
        go.Sankey(
            arrangement="snap",
            node={
                "label": labels,
                "color": [colors[name] for name in [*left, *right]],
                "x": [0.001] * len(left) + [0.999] * len(right),
                "y": y,
                "pad": 14,
                "thickness": 18,
                "line": {"width": 0},
                "hovertemplate": "%{label} customers<extra></extra>",
            },
            link={
                "source": sources,
                "target": targets,
                "value": values,
                "color": link_colors,
                "hovertemplate": "%{source.label} → %{target.label}: %{value:,} customers<extra></extra>",
            },
        )
    )
    for x, text, anchor in ((0, before, "left"), (1, after, "right")):
        figure.add_annotation(
            x=x, y=1.07, xref="paper", yref="paper", text=f"<b>{text}</b>", showarrow=False, xanchor=anchor
        )
    return _styled(figure, height=460, top=50)


def value_chart(summary: pd.DataFrame, colors: dict[str, str], horizon_days: int | None) -> go.Figure:
    """Each tier's share of customers, of actual past-horizon spend and of predicted next-horizon value.

    Args:
        summary: `tier_summary` output; the actual row appears when it has actual_spend_share.
        colors: `tier_colors` of the policy.
        horizon_days: The models' horizon, for the row labels (None: "horizon").
    """
    span = f"{horizon_days} days" if horizon_days else "horizon"
    rows = {"Customers": "share"}
    if "actual_spend_share" in summary:
        rows[f"Actual spend, past {span}"] = "actual_spend_share"
    rows[f"Predicted value, next {span}"] = "predicted_value_share"
    labels = list(rows)[::-1]
    figure = go.Figure()
    for tier in summary.index:
        shares = [float(summary.loc[tier, rows[label]]) * 100 for label in labels]
        figure.add_trace(
            go.Bar(
                name=tier,
                y=labels,
                x=shares,
                orientation="h",
                marker_color=colors[tier],
                text=[f"{s:.0f}%" if s >= 4 else "" for s in shares],
                textposition="inside",
                insidetextanchor="middle",
                hovertemplate=f"{tier}: %{{x:.1f}}% of %{{y}}<extra></extra>",
            )
        )
    figure.update_layout(
        barmode="stack",
        xaxis={"title": "Share of the total (%)", "range": [0, 100], "ticksuffix": "%"},
        yaxis={"ticksuffix": "  "},
        legend={"orientation": "h", "y": -0.25, "traceorder": "normal"},
    )
    return _styled(figure, height=120 + 70 * len(labels))


def arpu_chart(summary: pd.DataFrame, colors: dict[str, str], horizon_days: int | None) -> go.Figure:
    """Average spend per customer of each tier: actual over the past horizon beside predicted next horizon.

    Args:
        summary: `tier_summary` output (predicted_arpu; actual_arpu when actual spend was given).
        colors: `tier_colors` of the policy.
        horizon_days: The models' horizon, for the legend.
    """
    span = f"{horizon_days} days" if horizon_days else "horizon"
    tiers = summary.index.tolist()
    bars = [("predicted_arpu", f"Predicted, next {span}", "")]
    if "actual_arpu" in summary:
        bars.insert(0, ("actual_arpu", f"Actual, past {span}", "/"))
    figure = go.Figure()
    for column, name, pattern in bars:
        values = summary[column].astype(float)
        figure.add_trace(
            go.Bar(
                name=name,
                x=tiers,
                y=values.fillna(0),
                marker=_arpu_marker([colors[t] for t in tiers], pattern),
                text=[f"{v:,.0f}" if np.isfinite(v) else "–" for v in values],
                textposition="outside",
                cliponaxis=False,
                showlegend=False,
                offsetgroup=column,
                hovertemplate=f"%{{x}}: %{{y:,.2f}} per customer ({name.lower()})<extra></extra>",
            )
        )
    for column, name, pattern in bars:  # legend entries in a neutral colour: the bars carry tier colours
        marker = _arpu_marker(["#7b8794"], pattern)
        figure.add_trace(go.Bar(name=name, x=[None], y=[None], marker=marker, offsetgroup=column))
    figure.update_layout(
        barmode="group",
        xaxis_title="Tier",
        yaxis_title="Spend per customer",
        legend={"orientation": "h", "y": 1.12, "x": 0},
    )
    return _styled(figure, height=400, top=60)


def at_risk_chart(history: pd.DataFrame, colors: dict[str, str], threshold: float) -> go.Figure:
    """At-risk top-tier customers per snapshot date, stacked by tier.

    Args:
        history: One row per snapshot date (index), one column of counts per top tier.
        colors: `tier_colors` of the policy.
        threshold: The churn probability that counts as at risk, for the axis title.
    """
    dates = [str(day) for day in history.index]
    figure = go.Figure()
    for tier in history.columns:
        figure.add_trace(
            go.Bar(
                name=tier,
                x=dates,
                y=history[tier],
                marker_color=colors[tier],
                hovertemplate=f"%{{x}}: %{{y:,}} {tier} customers at risk<extra></extra>",
            )
        )
    totals = history.sum(axis=1)
    figure.add_trace(
        go.Scatter(
            x=dates,
            y=totals,
            mode="text",
            text=[f"{int(t):,}" for t in totals],
            textposition="top center",
            showlegend=False,
            hoverinfo="skip",
        )
    )
    figure.update_layout(
        barmode="stack",
        xaxis={"title": "Snapshot date", "type": "category"},
        yaxis={
            "title": f"Customers with churn ≥ {threshold:.0%}",
            "range": [0, max(float(totals.max()) if len(totals) else 0, 1) * 1.18],
            "tickformat": ",d",
        },
        legend={"orientation": "h", "y": 1.12, "x": 0, "traceorder": "normal"},
    )
    if len(totals) and totals.max() < 8:
        figure.update_yaxes(dtick=1)
    if not totals.any():
        figure.add_annotation(
            text="No top-tier customer was at risk in any snapshot.",
            x=0.5,
            y=0.5,
            xref="paper",
            yref="paper",
            showarrow=False,
            font={"size": 15, "color": "#52606d"},
        )
    return _styled(figure, height=380, top=60)


def _arpu_marker(colors: list[str], pattern: str) -> dict:
    """Solid bars for predictions, lighter hatched bars for actual spend."""
    return {
        "color": colors,
        "opacity": 0.55 if pattern else 1.0,
        "pattern": {"shape": pattern, "fgcolor": "#ffffff", "solidity": 0.3},
        "line": {"color": colors, "width": 1.5},
    }


def _styled(figure: go.Figure, height: int, top: int = 20) -> go.Figure:
    figure.update_layout(
        template="plotly_white",
        height=height,
        margin={"l": 70, "r": 30, "t": top, "b": 60},
        font={"family": FONT, "size": 13, "color": "#1f2933"},
        hoverlabel={"font": {"family": FONT}},
    )
    return figure


def _stacked_centers(sizes: list[float], gap: float = 0.04) -> list[float]:
    """Vertical centres in (0, 1) of nodes stacked top to bottom, proportional to their sizes."""
    total = float(sum(sizes)) or 1.0
    room = 1 - gap * max(len(sizes) - 1, 0)
    centers, top = [], 0.0
    for size in sizes:
        height = room * size / total
        centers.append(min(max(top + height / 2, 0.001), 0.999))
        top += height + gap
    return centers


def _transparent(color: str, alpha: float) -> str:
    red, green, blue = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def persona_tier_chart(table: pd.DataFrame, colors: dict[str, str], tiers: list[str]) -> go.Figure:
    """Each persona's customers split by tier (horizontal stacked bars, largest persona on top).

    Args:
        table: `persona_by_tier` output (a column per tier).
        colors: `tier_colors` of the policy.
        tiers: The policy's tier names, in order.
    """
    personas = table.index.tolist()[::-1]
    figure = go.Figure(
        [
            go.Bar(
                y=personas,
                x=table.loc[personas, tier],
                name=tier,
                orientation="h",
                marker_color=colors[tier],
                hovertemplate=f"%{{y}} · {tier}: %{{x:,}} customers<extra></extra>",
            )
            for tier in tiers
        ]
    )
    figure.update_layout(barmode="stack", xaxis_title="Customers", legend_title_text="Tier")
    return _styled(figure, height=120 + 44 * len(personas))


def persona_profile_chart(profile: pd.DataFrame) -> go.Figure:
    """What sets each persona apart: its centre on each habit, in standard deviations from the average
    customer (a heatmap; red above, blue below).

    Args:
        profile: One row per persona (index: name), one column per habit (plain words), values in sd.
    """
    limit = max(1.0, float(np.nanmax(np.abs(profile.to_numpy())))) if profile.size else 1.0
    figure = go.Figure(
        go.Heatmap(
            z=profile.to_numpy(),
            x=profile.columns.tolist(),
            y=profile.index.tolist(),
            zmin=-limit,
            zmax=limit,
            colorscale="RdBu_r",
            colorbar={"title": "sd"},
            text=np.round(profile.to_numpy(), 1),
            texttemplate="%{text}",
            hovertemplate="%{y} · %{x}: %{z:+.2f} sd<extra></extra>",
        )
    )
    figure.update_xaxes(tickangle=-35)
    return _styled(figure, height=220 + 40 * len(profile), top=20)
