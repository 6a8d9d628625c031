"""`tierwise train`, `tierwise backtest` and `tierwise models ...`: training and the MLflow registry."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated

import typer

from features.data.store import DataStore, job_lock_wait
from features.model_table import MODEL_NAMES
from features.settings import Settings
from pipelines.cli.app import (
    Format,
    ModelChoice,
    ModelName,
    OutputFormat,
    app,
    console,
    model_names,
    models_app,
    out,
    parse_date,
    print_rows,
    print_tables,
    settings_of,
)


class LevelAnchor(StrEnum):
    """`--level-anchor`: `training.level_anchor.LEVEL_ANCHOR_MODES`."""

    auto = "auto"
    keep = "keep"
    drop = "drop"


@app.command("train")
def train_command(
    ctx: typer.Context,
    model: Annotated[
        ModelChoice, typer.Option(help="Which model to train (all: the three and the next-order model).")
    ] = ModelChoice.all,
    as_of: Annotated[
        str | None,
        typer.Option(help="Train as if today were this date (default: the day after the last order)."),
    ] = None,
    horizon: Annotated[int, typer.Option(min=7, help="Days the labels look ahead.")] = 90,
    trials: Annotated[int, typer.Option(min=0, help="Optuna trials per model (0: default parameters).")] = 0,
    step: Annotated[int, typer.Option(min=1, help="Days between training cutoffs.")] = 7,
    level_anchor: Annotated[
        LevelAnchor,
        typer.Option(
            help="Whether the value model keeps its level anchor: auto keeps it if it brought the test "
            "cutoff's predicted total nearer the actual; keep or drop force it."
        ),
    ] = LevelAnchor.auto,
) -> None:
    """Train, test against the baselines, register in MLflow and promote a model that beats its champion."""
    from pipelines import train

    settings = settings_of(ctx)
    day = parse_date(as_of, "--as-of") if as_of else None
    with console.status("training") as status:
        results = train.train(
            settings,
            model_names(model),
            day,
            horizon,
            trials,
            step,
            on_step=lambda text: status.update(f"training: {text}"),
            level_anchor=level_anchor.value,
        )
    for result in results:
        primary = ", ".join(f"{k} {v:.3f}" for k, v in result.test_metrics.items())
        out.print(f"[bold]{result.name}[/bold] v{result.version}: {primary}")
        for base, values in result.baseline_metrics.items():
            out.print(f"   baseline {base}: " + ", ".join(f"{k} {v:.3f}" for k, v in values.items()))
        out.print(
            f"   {'promoted to champion' if result.promoted else 'registered as challenger'}: {result.reason}"
        )
    if model == "all":
        _train_next_order(settings, day, horizon, step)
    out.print(f"MLflow: {settings.tracking_uri} (`tierwise ui` shows it)")


def _train_next_order(settings: Settings, day: date | None, horizon: int, step: int) -> None:
    """The next-order model beside the three, judged against BG/NBD; it needs a horizon of 30 days."""
    from pipelines.next_order import train_next_order
    from training.next_order import ANSWER_DAYS

    if horizon < max(ANSWER_DAYS):
        console.print(f"next_order: not trained, it needs --horizon {max(ANSWER_DAYS)} or more")
        return
    with console.status("training: next_order"):
        trained = train_next_order(settings, day, horizon, step_days=step)
    shown = ("auc_30d", "mae_days")
    scores = ", ".join(f"{k} {v:.3f}" for k, v in trained.test_metrics.items() if k in shown)
    baseline = ", ".join(f"{k} {v:.3f}" for k, v in trained.baseline_metrics.items() if k in shown)
    out.print(f"[bold]next_order[/bold] v{trained.version}: {scores}")
    out.print(f"   baseline bgnbd: {baseline}")
    out.print(
        f"   {'promoted to champion' if trained.promoted else 'registered as challenger'}: {trained.reason}"
    )


@app.command("backtest")
def backtest_command(
    ctx: typer.Context,
    as_of: Annotated[str, typer.Option(help="Score the champions as of this date.")],
    horizon: Annotated[int, typer.Option(min=7, help="Days after --as-of to compare with.")] = 90,
    model: Annotated[ModelChoice, typer.Option(help="Which model to backtest.")] = ModelChoice.all,
    allow_leakage: Annotated[
        bool,
        typer.Option(
            "--allow-leakage",
            help="Backtest a champion trained after --as-of anyway (optimistic, marked so).",
        ),
    ] = False,
    rolling: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Rolling origins instead: train and test each model as of this many dates, --every days "
            "apart back from --as-of (nothing is registered); prints each test and the mean ± spread.",
        ),
    ] = None,
    every: Annotated[int, typer.Option(min=7, help="Days between rolling origins.")] = 28,
    output: Format = OutputFormat.table,
) -> None:
    """Score the champions and the baselines as of a past date against what really happened after it;
    refused for a champion trained on orders after that date unless --allow-leakage. With --rolling N,
    a rolling-origin evaluation: N trainings and tests, none of them leaking."""
    from pipelines import train

    settings = settings_of(ctx)
    if rolling is not None:
        with console.status("rolling-origin backtest"):
            table = train.rolling_backtest(
                settings, parse_date(as_of, "--as-of"), horizon, model_names(model), rolling, every
            )
        print_tables({"origins": table, "summary": train.summarize_rolling(table)}, output)
        return
    with console.status("backtest"):
        report = train.backtest(
            settings, parse_date(as_of, "--as-of"), horizon, model_names(model), allow_leakage
        )
    for name, entry in report.items():
        if "leakage" in entry:
            console.print(f"warning: {name} {entry['leakage']}", markup=False)
    if output is not OutputFormat.table or not out.is_terminal:
        print_rows(backtest_rows(report), BACKTEST_COLUMNS, output)
        return
    for name, entry in report.items():
        out.print(f"[bold]{name}[/bold] v{entry['version']} on {entry['customers']:,} customers:")
        out.print("   model: " + ", ".join(f"{k} {v:.3f}" for k, v in entry["model"].items()))
        for base, values in entry["baselines"].items():
            out.print(f"   baseline {base}: " + ", ".join(f"{k} {v:.3f}" for k, v in values.items()))


BACKTEST_COLUMNS = ["model", "version", "customers", "scorer", "metric", "value", "leakage"]


def backtest_rows(report: dict) -> list[dict]:
    """A backtest report for scripts: one row per model, scorer (the champion or a baseline) and
    metric, full precision; `leakage` says why a champion's figures are optimistic, if they are."""
    rows = []
    for name, entry in report.items():
        scorers = {"model": entry["model"], **{f"baseline {b}": v for b, v in entry["baselines"].items()}}
        for scorer, values in scorers.items():
            rows += [
                {
                    "model": name,
                    "version": entry["version"],
                    "customers": entry["customers"],
                    "scorer": scorer,
                    "metric": metric,
                    "value": value,
                    "leakage": entry.get("leakage", ""),
                }
                for metric, value in values.items()
            ]
    return rows


@models_app.command("list")
def models_list(ctx: typer.Context, output: Format = OutputFormat.table) -> None:
    """Registered versions of each model, newest first; the champion is marked."""
    from training import registry

    settings = settings_of(ctx)
    rows = []
    if settings.mlflow_uri or (settings.mlruns_dir / "mlflow.db").exists():  # reading creates no store
        registry.configure(settings)
        for name in MODEL_NAMES:
            for v in registry.versions(name):
                metric = v.tags.get("test_metric")
                rows.append(
                    {
                        "model": name,
                        "version": v.version,
                        "role": "champion" if v.is_champion else "challenger",
                        "as_of": v.tags.get("as_of", ""),
                        "test_cutoff": v.tags.get("test_cutoff", ""),
                        "metric": v.tags.get("primary_metric", ""),
                        "test_value": round(float(metric), 4) if metric else None,
                    }
                )
    if not rows and output is OutputFormat.table:
        out.print(f"no model trained yet in {settings.home} (`tierwise train`)", highlight=False)
        return
    print_rows(rows, ["model", "version", "role", "as_of", "test_cutoff", "metric", "test_value"], output)


@models_app.command("promote")
def models_promote(
    ctx: typer.Context,
    name: Annotated[ModelName, typer.Argument(help="Model name.")],
    version: Annotated[int, typer.Argument(help="Version to make champion.")],
) -> None:
    """Make a version the champion by hand (the previous champion is remembered for rollback)."""
    from training import registry

    registry.configure(settings_of(ctx))
    with DataStore(settings_of(ctx).data_dir).writing(job_lock_wait()):
        registry.promote(name.value, version)
    out.print(f"{name.value} v{version} is champion")


@models_app.command("rollback")
def models_rollback(
    ctx: typer.Context, name: Annotated[ModelName, typer.Argument(help="Model name.")]
) -> None:
    """Give the champion alias back to the previous champion."""
    from training import registry

    registry.configure(settings_of(ctx))
    with DataStore(settings_of(ctx).data_dir).writing(job_lock_wait()):
        version = registry.rollback(name.value)
    out.print(f"{name.value} v{version} is champion again")
