"""`tierwise campaigns launch / measure / list`: campaigns with a control group, and their measured effect."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from pipelines.cli.app import (
    AsOf,
    Format,
    OutputFormat,
    app,
    console,
    for_people,
    out,
    parse_date,
    print_rows,
    settings_of,
)

campaigns_app = typer.Typer(
    help="Launch campaigns with a control group and measure their effect.", no_args_is_help=True
)
app.add_typer(campaigns_app, name="campaigns")

CampaignName = Annotated[str, typer.Argument(help="The campaign: <home>/campaigns/<NAME>.yaml.")]
#: `--as-of` of the commands that read a launch.
LaunchDate = Annotated[str | None, typer.Option("--as-of", help="Which launch (default: the latest).")]


@campaigns_app.command("launch")
def campaigns_launch(
    ctx: typer.Context,
    name: CampaignName,
    as_of: AsOf = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="The campaign's YAML (default: <home>/campaigns/NAME.yaml).")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(help="Treatment list for the CRM, CSV or Parquet (default: in the launch record)."),
    ] = None,
    again: Annotated[bool, typer.Option("--again", help="Launch on another date than before.")] = False,
    target: Annotated[
        str, typer.Option(help="all: the whole audience; uplift: the --budget customers it changes most.")
    ] = "all",
    budget: Annotated[
        int | None, typer.Option(min=4, help="How many customers to contact (with --target uplift).")
    ] = None,
) -> None:
    """Pick the audience from the tier snapshot, hold out the control group, record the launch, export the list."""
    from pipelines import campaigns

    day = parse_date(as_of, "--as-of") if as_of else None
    done = campaigns.launch(settings_of(ctx), name, day, file, output, again, budget=budget, target=target)
    note = " (already launched: nothing changed)" if done.already_launched else ""
    out.print(
        f"{name} as of {done.as_of}: {done.treated:,} treated → {done.treatment_file}; "
        f"{done.control:,} held out{note}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@campaigns_app.command("measure")
def campaigns_measure(
    ctx: typer.Context,
    name: CampaignName,
    as_of: LaunchDate = None,
    output: Format = OutputFormat.table,
) -> None:
    """Treated against control once the window has ended: effect with 95% intervals (raw and CUPED),
    incremental revenue, cost and ROI, power, and the effect by tier and churn-risk decile."""
    from pipelines import campaigns

    day = parse_date(as_of, "--as-of") if as_of else None
    result = campaigns.measure(settings_of(ctx), name, day)
    if output is OutputFormat.json:
        sys.stdout.write(json.dumps(result, indent=1) + "\n")
        return
    rows = _effect_rows(result["outcomes"], "cuped", ("treated", "control"))
    print_rows(rows, list(rows[0]), output)
    if output is OutputFormat.table and out.is_terminal:
        money = result["money"]
        for key, value in money.items():
            out.print(f"{key.replace('_', ' ')}: {for_people(value)}", markup=False, highlight=False)
        out.print(result["verdict"], markup=False, highlight=False, soft_wrap=True)


@campaigns_app.command("list")
def campaigns_list(ctx: typer.Context, output: Format = OutputFormat.table) -> None:
    """Every launch in the home, with the measured effect on its primary outcome when there is one."""
    from pipelines import campaigns

    rows = campaigns.launches(settings_of(ctx))
    columns = ["campaign", "as_of", "treatment", "control", "outcome", "window_ends", "effect", "low", "high"]
    print_rows(rows, columns, output)


@campaigns_app.command("uplift")
def campaigns_uplift(
    ctx: typer.Context,
    name: CampaignName,
    as_of: LaunchDate = None,
    output: Format = OutputFormat.table,
) -> None:
    """Learn from a measured launch whom the campaign changes most; compare its Qini with churn-risk and
    random targeting on held-out customers; register it in MLflow (champion if it beats both)."""
    from pipelines.uplift import train_uplift

    day = parse_date(as_of, "--as-of") if as_of else None
    report = train_uplift(settings_of(ctx), name, day)
    rows = [
        {
            "targeting": method,
            "qini": t.qini,
            "qini_low": t.low,
            "qini_high": t.high,
            "uplift_auc": t.uplift_auc,
        }
        for method, t in report.targeting.items()
    ]
    print_rows(rows, list(rows[0]), output)
    if output is OutputFormat.table and out.is_terminal:
        verdict = (
            "champion"
            if report.promoted
            else "registered, not champion (its Qini does not clearly beat the others)"
        )
        out.print(f"uplift-{name} v{report.version}: {verdict}", markup=False, highlight=False)


@campaigns_app.command("observe")
def campaigns_observe(
    ctx: typer.Context,
    campaign_id: Annotated[
        str, typer.Argument(help="An imported campaign (table `campaigns`, e.g. Complete Journey's).")
    ],
    output: Format = OutputFormat.table,
) -> None:
    """Recipients of an imported campaign against the other customers: observational differences,
    not effects (the shop chose the recipients; only a launch with a control group measures an effect)."""
    from pipelines import campaigns

    result = campaigns.observe(settings_of(ctx), campaign_id)
    if output is OutputFormat.json:
        sys.stdout.write(json.dumps(result, indent=1) + "\n")
        return
    rows = _effect_rows(result["outcomes"], "adjusted_for_the_window_before", ("recipients", "others"))
    print_rows(rows, list(rows[0]), output)
    console.print(result["summary"], markup=False, highlight=False, soft_wrap=True)


def _effect_rows(outcomes: dict, adjusted: str, groups: tuple[str, str]) -> list[dict]:
    """One row per outcome: the groups' means, the raw difference with its interval, the adjusted one."""
    first, second = groups
    return [
        {
            "outcome": outcome,
            f"{first}_mean": values["raw"]["treated_mean"],
            f"{second}_mean": values["raw"]["control_mean"],
            "difference": values["raw"]["difference"],
            "ci_low": values["raw"]["low"],
            "ci_high": values["raw"]["high"],
            "adjusted_difference": values[adjusted]["difference"],
            "adjusted_ci_low": values[adjusted]["low"],
            "adjusted_ci_high": values[adjusted]["high"],
        }
        for outcome, values in outcomes.items()
    ]
