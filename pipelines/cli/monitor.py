"""`tierwise monitor` and `tierwise monitor ui`: model health on the latest tier snapshot, and
Evidently's UI over the monitoring workspace."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from pipelines.cli.app import (
    AsOf,
    Format,
    ModelChoice,
    OutputFormat,
    PolicyName,
    app,
    console,
    model_names,
    out,
    parse_date,
    print_rows,
    settings_of,
)
from pipelines.exit_codes import ExitCode

monitor_app = typer.Typer(
    help="Drift and real quality of the models (Evidently), with alerts.", invoke_without_command=True
)
app.add_typer(monitor_app, name="monitor")


@monitor_app.callback()
def monitor_command(
    ctx: typer.Context,
    as_of: AsOf = None,
    policy: PolicyName = "lifecycle",
    model: Annotated[ModelChoice, typer.Option(help="Which model to monitor.")] = ModelChoice.all,
    thresholds: Annotated[
        Path | None,
        typer.Option(help="Alert thresholds (YAML); default <home>/monitoring.yaml, else built in."),
    ] = None,
    output: Format = OutputFormat.table,
) -> None:
    """Compare features and predictions with each champion's training reference, grade the real quality of
    matured snapshots, write the reports and alerts; exit 5 when an alert fires."""
    if ctx.invoked_subcommand is not None:
        return
    from pipelines import monitor

    settings = settings_of(ctx)
    day = parse_date(as_of, "--as-of") if as_of else None
    with console.status("monitoring"):
        report = monitor.monitor(settings, day, policy, thresholds, model_names(model))
    if output is not OutputFormat.table:
        rows = [
            {
                "model": name,
                "version": health.version,
                "grade": health.grade,
                "features_drifted": len(health.features.drifted),
                "features": len(health.features.columns),
                "mean_prediction_shift": health.mean_shift,
                "alerts": sum(1 for r in report.alerts if r.get("model") == name),
            }
            for name, health in report.health.items()
        ]
        print_rows(rows, list(rows[0]) if rows else ["model"], output)
        console.print(f"monitoring report: {report.overview}", markup=False, highlight=False, soft_wrap=True)
        if report.alerts:
            raise typer.Exit(ExitCode.ALERT)
        return
    for name, health in report.health.items():
        drift = health.features
        out.print(
            f"{name} v{health.version}: grade {health.grade}; {len(drift.drifted)}/{len(drift.columns)} features "
            f"drifted; mean prediction {health.mean_shift:+.0%} against its reference",
            markup=False,
            highlight=False,
        )
    for record in report.alerts:
        out.print(
            f"[{record['severity']}] {record['rule']}: {record['message']}", markup=False, highlight=False
        )
    out.print(f"monitoring report: {report.overview}", markup=False, highlight=False, soft_wrap=True)
    if report.alerts:
        raise typer.Exit(ExitCode.ALERT)


@monitor_app.command("ui")
def monitor_ui(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    host: Annotated[str, typer.Option(help="Interface to bind (0.0.0.0 for all).")] = "127.0.0.1",
) -> None:
    """Serve Evidently's UI on the monitoring workspace (one project per model); Ctrl+C stops it."""
    from pipelines.monitor import workspace_dir

    workspace = workspace_dir(settings_of(ctx))
    workspace.mkdir(parents=True, exist_ok=True)
    console.print(
        f"Evidently UI on http://{host}:{port} (workspace {workspace})", markup=False, highlight=False
    )
    evidently = str(Path(sys.executable).parent / "evidently")
    # Replace this process: signals (SIGTERM from a service manager, Ctrl+C) reach the server itself.
    os.execv(evidently, [evidently, "ui", "--workspace", str(workspace), "--host", host, "--port", str(port)])
