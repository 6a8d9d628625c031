"""The operations report page: every section, numbers from the KPIs, one colour per tier, nothing external."""

from __future__ import annotations

import re
from datetime import date

import numpy as np
import pandas as pd
import pytest

from tests.tiering.customers import customers
from tiering import assign_tiers, load_policy
from tiering.reports import at_risk_top_tier, evaluate_alerts, tier_summary
from tiering.reports.charts import (
    arpu_chart,
    at_risk_chart,
    distribution_chart,
    tier_colors,
    value_chart,
)
from tiering.reports.page import at_risk_history, render_report

POLICIES = pytest.mark.parametrize(
    "policy", [load_policy("lifecycle"), load_policy("rfmp")], ids=["lifecycle", "rfmp"]
)
DAYS = [date(2017, 9, 3), date(2017, 9, 17), date(2017, 10, 1)]
SECTIONS = [
    "Tier distribution",
    "Migration since the previous snapshot",
    "Value contribution by tier",
    "Spend per customer (ARPU) by tier",
    "Top-tier customers at risk over time",
    "Alerts",
]


def snapshot(policy, seed: int, n: int = 600) -> pd.DataFrame:
    """Seeded customers with their tiers, shaped like a `tierwise score` snapshot."""
    frame = customers(n, seed)
    tiers = assign_tiers(frame, policy)
    return frame[["customer_id", "churn_probability", "expected_value", "growth_potential"]].assign(
        tier=tiers.tier.to_numpy(), horizon_days=92, churn_version=3, customer_value_version=2
    )


def page(policy, with_previous: bool = True, **changes) -> str:
    snaps = {day: snapshot(policy, seed) for seed, day in enumerate(DAYS)}
    current, previous = snaps[DAYS[-1]], snaps[DAYS[-2]] if with_previous else None
    spend = pd.Series(np.linspace(10, 500, len(current)), index=current.customer_id)
    arguments = {
        "as_of": DAYS[-1],
        "previous": previous,
        "previous_as_of": DAYS[-2] if with_previous else None,
        "actual_spend": spend,
        "history": at_risk_history(snaps, policy),
        "alerts": evaluate_alerts(current, previous, policy, as_of=DAYS[-1]),
    }
    return render_report(current, policy, **(arguments | changes))


@POLICIES
def test_the_page_has_every_section_a_chart_each_and_names_policy_date_and_models(policy):
    html = page(policy)
    for title in SECTIONS:
        assert f"<h2>{title}</h2>" in html
    assert f"<title>Tier operations report · {policy.name} · 2017-10-01</title>" in html
    assert "previous snapshot 2017-09-17" in html and "churn v3, customer_value v2" in html
    assert html.count('class="plotly-graph-div"') == 5
    assert 'data-expected="5"' in html
    for tier in policy.tier_names:
        assert f"{tier}</td>" in html


def test_the_page_is_self_contained_with_plotly_inline_once():
    html = page(load_policy("lifecycle"))
    assert not re.search(r"<script[^>]*\bsrc=", html)
    assert not re.search(r"""<link[^>]*href=["']?https?:""", html)
    assert html.count("plotly.js v") == 1
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")


def test_without_a_previous_snapshot_the_migration_section_says_so_instead_of_a_chart():
    html = page(load_policy("lifecycle"), with_previous=False)
    assert "There is no earlier lifecycle snapshot before 2017-10-01" in html
    assert '"type":"sankey"' not in html
    assert html.count('class="plotly-graph-div"') == 4 and 'data-expected="4"' in html
    assert "no previous snapshot" in html


def test_the_summary_table_shows_the_kpi_numbers():
    policy = load_policy("lifecycle")
    current = snapshot(policy, 2)
    spend = pd.Series(np.linspace(10, 500, len(current)), index=current.customer_id)
    html = render_report(current, policy, as_of=DAYS[-1], actual_spend=spend)
    summary = tier_summary(current, policy, spend)
    for tier, row in summary.iterrows():
        cells = re.search(rf"{tier}</td>(.*?)</tr>", html).group(1)
        assert f"<td>{int(row.customers):,}</td>" in cells
        assert f"<td>{row.predicted_arpu:,.2f}</td>" in cells or row.customers == 0
        assert f"<td>{row.actual_spend_share:.1%}</td>" in cells


def test_without_actual_spend_the_page_shows_predictions_only():
    html = page(load_policy("lifecycle"), actual_spend=None)
    assert "Actual spend, past" not in html and "Actual ARPU" not in html
    assert "Predicted value, next 92 days" in html


def test_alerts_are_listed_escaped_and_a_quiet_day_says_so():
    alert = {"rule": "share_shift", "severity": "warning", "message": "Gold <b>grew</b>", "details": {}}
    html = page(load_policy("lifecycle"), alerts=[alert])
    assert "Gold &lt;b&gt;grew&lt;/b&gt;" in html and "Gold <b>grew</b>" not in html
    assert '<span class="badge warning">warning</span>' in html
    assert "No alert fired on this snapshot." in page(load_policy("lifecycle"), alerts=[])


@POLICIES
def test_at_risk_history_counts_at_risk_top_tier_customers_per_snapshot(policy):
    snaps = {day: snapshot(policy, seed) for seed, day in enumerate(DAYS)}
    history = at_risk_history({DAYS[2]: snaps[DAYS[2]], DAYS[0]: snaps[DAYS[0]]}, policy)
    assert history.index.tolist() == [DAYS[0], DAYS[2]]
    assert history.columns.tolist() == policy.tier_names[:2]
    for day in history.index:
        expected = at_risk_top_tier(snaps[day], policy).tier.value_counts()
        assert history.loc[day].sum() == expected.sum()
        for tier, count in expected.items():
            assert history.loc[day, tier] == count


@POLICIES
def test_each_tier_has_one_colour_in_every_chart(policy):
    colors = tier_colors(policy)
    assert len({colors[t] for t in policy.tier_names}) == len(policy.tier_names)
    current = snapshot(policy, 1)
    summary = tier_summary(current, policy, pd.Series(1.0, index=current.customer_id))
    history = at_risk_history({DAYS[0]: current}, policy)
    bars = distribution_chart(summary, colors).data[0]
    assert list(bars.marker.color) == [colors[t] for t in policy.tier_names]
    for trace in value_chart(summary, colors, 92).data:
        assert trace.marker.color == colors[trace.name]
    for trace in arpu_chart(summary, colors, 92).data[:2]:
        assert list(trace.marker.color) == [colors[t] for t in policy.tier_names]
    for trace in at_risk_chart(history, colors, 0.3).data[:-1]:
        assert trace.marker.color == colors[trace.name]
