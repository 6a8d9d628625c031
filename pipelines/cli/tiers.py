"""`tierwise score` and `tierwise tiers ...`: tier snapshots and what operations reads off them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipelines.cli.app import (
    AsOf,
    Format,
    OutputFormat,
    PolicyName,
    app,
    console,
    out,
    parse_date,
    print_rows,
    print_tables,
    settings_of,
    tiers_app,
)
from pipelines.exit_codes import ExitCode


@app.command("score")
def score_command(
    ctx: typer.Context,
    as_of: Annotated[str | None, typer.Option(help="Snapshot date to score (default: the latest).")] = None,
    policy: PolicyName = "lifecycle",
    classic: Annotated[
        bool, typer.Option(help="Tier by history only (classic RFM), for comparison.")
    ] = False,
    overrides: Annotated[
        Path | None, typer.Option(help="Manual overrides (CSV or YAML); default data/overrides.csv.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="Also export the snapshot here (.csv or .parquet).")
    ] = None,
) -> None:
    """Score every customer with the champions and write a dated tier snapshot."""
    from pipelines import score

    settings = settings_of(ctx)
    day = parse_date(as_of, "--as-of") if as_of else None
    with console.status("scoring"):
        report = score.score(settings, day, policy, classic, overrides, output)
    out.print(
        f"{report.customers:,} customers scored as of {report.as_of} with {report.policy} → {report.path}"
    )
    for tier, count in report.tier_counts.items():
        out.print(f"  {tier:<10} {count:>10,}  {count / report.customers:6.1%}")
    out.print("models: " + ", ".join(f"{k} {source}" for k, source in report.model_sources.items()))
    out.print(report.answers_note or f"answers: {report.answers:,} stored for the service")


@tiers_app.command("report")
def tiers_report(
    ctx: typer.Context,
    policy: PolicyName = "lifecycle",
    as_of: AsOf = None,
    html: Annotated[
        Path | None,
        typer.Option(help="Where to write the HTML report (default: data/reports/<policy>-<date>.html)."),
    ] = None,
    output: Format = OutputFormat.table,
) -> None:
    """Tier sizes and shares, predicted value and ARPU, churn risk per tier, migration since the last snapshot;
    also written as a self-contained HTML page with charts and the alerts (its path on stderr)."""
    from pipelines import tier_reports

    day = parse_date(as_of, "--as-of") if as_of else None
    settings = settings_of(ctx)
    print_tables(tier_reports.report(settings, policy, day), output)
    page = tier_reports.html_report(settings, policy, day, html)
    console.print(f"html report: {page}", markup=False, highlight=False, soft_wrap=True)


@tiers_app.command("alerts")
def tiers_alerts(
    ctx: typer.Context,
    policy: PolicyName = "lifecycle",
    as_of: AsOf = None,
    rules: Annotated[
        Path | None, typer.Option(help="Alert rules (YAML); default: the built-in rules.")
    ] = None,
    output: Annotated[Path | None, typer.Option(help="Where to write the alert records (JSON).")] = None,
    output_format: Format = OutputFormat.table,
) -> None:
    """Evaluate alert rules; exits with code 5 when an alert fires (records are written as JSON)."""
    from pipelines import tier_reports

    day = parse_date(as_of, "--as-of") if as_of else None
    records = tier_reports.alerts(settings_of(ctx), policy, day, rules, output)
    if output_format is not OutputFormat.table:
        print_rows(records, ["severity", "rule", "message"], output_format)
    else:
        for record in records:
            out.print(f"[{record['severity']}] {record['rule']}: {record['message']}", markup=False)
        if not records:
            out.print("no alert")
    if records:
        raise typer.Exit(ExitCode.ALERT)


@tiers_app.command("backtest")
def tiers_backtest(
    ctx: typer.Context,
    as_of: Annotated[str, typer.Option(help="Assign tiers as of this date, then look at what happened.")],
    horizon: Annotated[int, typer.Option(min=7, help="Days after --as-of to compare with.")] = 90,
    policy: Annotated[str, typer.Option(help="Tier policy.")] = "lifecycle",
    output: Format = OutputFormat.table,
    allow_leakage: Annotated[
        bool,
        typer.Option("--allow-leakage", help="Use champions trained after --as-of anyway (optimistic)."),
    ] = False,
) -> None:
    """Predictive vs classic tiers: next-horizon spend per customer and churn rate per tier (nothing is
    written to the tier history)."""
    from pipelines import tier_reports

    table = tier_reports.policy_backtest(
        settings_of(ctx), policy, parse_date(as_of, "--as-of"), horizon, allow_leakage
    )
    print_tables({"backtest": table}, output)


@tiers_app.command("export")
def tiers_export(
    ctx: typer.Context,
    segment: Annotated[
        str, typer.Option(help="at-risk-high-value, dormant-winback, growth-opportunity, new-welcome.")
    ],
    output: Annotated[
        Path, typer.Option(help="CSV or Parquet file for the CRM; the control list goes beside it.")
    ],
    policy: PolicyName = "lifecycle",
    control_share: Annotated[
        float, typer.Option(help="Share held out at random to measure the effect.")
    ] = 0.1,
    as_of: AsOf = None,
) -> None:
    """Write a campaign list with each customer's benefit, holding out a random control group."""
    from pipelines import tier_reports

    day = parse_date(as_of, "--as-of") if as_of else None
    result = tier_reports.export(settings_of(ctx), policy, segment, output, control_share, day)
    out.print(
        f"{segment}: {len(result.export.treated):,} customers → {result.treated_path}; "
        f"control {len(result.export.control):,} → {result.control_path}"
    )
