"""The `tierwise` command line.

Heavy libraries (DuckDB, Feast, MLflow, Evidently) are imported inside the commands that use them,
so `tierwise --help` answers at once. Errors about the user's input are printed as one message and
exit with `ExitCode.BAD_INPUT`; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from features.errors import InputError
from features.model_table import MODEL_NAMES
from features.settings import HOME_ENV, Settings
from pipelines.exit_codes import ExitCode

app = typer.Typer(help="Predictive customer tiering for grocery e-commerce.", no_args_is_help=True)
data_app = typer.Typer(help="Import, generate and inspect order data.", no_args_is_help=True)
features_app = typer.Typer(
    help="Build customer features and manage the Feast feature store.", no_args_is_help=True
)
models_app = typer.Typer(
    help="The MLflow model registry: versions, champions, rollback.", no_args_is_help=True
)
app.add_typer(data_app, name="data")
app.add_typer(features_app, name="features")
tiers_app = typer.Typer(
    help="Tier reports, alerts and campaign lists from the tier snapshots.", no_args_is_help=True
)
app.add_typer(models_app, name="models")
app.add_typer(tiers_app, name="tiers")


#: A model of the model table, as a command-line choice.
ModelName = StrEnum("ModelName", {name: name for name in MODEL_NAMES})
#: A model, or all of them.
ModelChoice = StrEnum("ModelChoice", {**{name: name for name in MODEL_NAMES}, "all": "all"})


def _model_names(choice: ModelChoice) -> list[str]:
    return list(MODEL_NAMES) if choice == "all" else [choice.value]


console = Console(stderr=True)
out = Console()


@app.callback()
def _global_options(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            envvar=HOME_ENV,
            help="Folder for data/ and mlruns/ (default: the repository).",
            file_okay=False,
        ),
    ] = None,
) -> None:
    ctx.obj = Settings.resolve(home)


def _settings(ctx: typer.Context) -> Settings:
    return ctx.find_root().obj


@data_app.command("import")
def data_import(
    ctx: typer.Context,
    source: Annotated[
        str, typer.Argument(help="'completejourney', or a CSV/Parquet file of orders or order lines.")
    ],
    map_: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="FIELD=COLUMN, repeatable: which column holds customer_id, order_id, ordered_at, amount, "
            "product_id, quantity, discount, coupon_discount, items, store_id, department, category, "
            "subcategory, brand, is_private_label. Columns already named like the field need no --map.",
        ),
    ] = None,
    timezone: Annotated[str, typer.Option(help="Time zone of timestamps that carry no offset.")] = "UTC",
    timestamp_format: Annotated[
        str | None,
        typer.Option(help="strptime format when timestamps are not ISO-8601, e.g. '%d/%m/%Y %H:%M'."),
    ] = None,
    source_dir: Annotated[
        Path | None,
        typer.Option(help="For completejourney: a folder of its Parquet files (default: the package)."),
    ] = None,
) -> None:
    """Import orders into the canonical tables; bad rows are quarantined with a reason, never dropped."""
    from pipelines import import_data

    settings = _settings(ctx)
    with console.status("importing") as status:

        def on_step(text: str) -> None:
            status.update(f"importing: {text}")

        if source == "completejourney":
            report = import_data.import_completejourney(settings, source_dir, on_step=on_step)
        else:
            report = import_data.import_file(
                settings,
                Path(source),
                map_ or [],
                timezone=timezone,
                timestamp_format=timestamp_format,
                on_step=on_step,
            )
    out.print(f"[bold]{report.source}[/bold] → {settings.data_dir}")
    out.print(report.reconciliation())
    for reason, count in report.quarantined_by_reason.items():
        out.print(f"  quarantined {count:,} × {reason}")


@data_app.command("synth")
def data_synth(
    ctx: typer.Context,
    customers: Annotated[int, typer.Option(min=100, help="How many customers to generate.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same data.")] = 42,
    start: Annotated[
        str, typer.Option(help="First day of the generated period (YYYY-MM-DD).")
    ] = "2024-01-01",
    days: Annotated[int, typer.Option(min=28, help="Length of the period in days.")] = 365,
    replace: Annotated[bool, typer.Option(help="Replace data already imported in this home.")] = False,
) -> None:
    """Generate a synthetic grocery dataset at any scale, written in chunks (memory bounded)."""
    from rich.progress import Progress

    from features.data.store import DataStore
    from features.data.synth import generate

    settings = _settings(ctx)
    store = DataStore(settings.data_dir)
    if store.has_table("orders") and not replace:
        raise InputError(f"{settings.data_dir} already holds orders; pass --replace or choose another --home")
    with Progress(console=console) as progress:
        task = progress.add_task("generating customers", total=customers)
        report = generate(
            store,
            customers,
            seed,
            start=_parse_date(start, "--start"),
            days=days,
            now=datetime.now(UTC),
            on_chunk=lambda done, total: progress.update(task, completed=done),
        )
    out.print(
        f"synthetic data → {settings.data_dir}: {report.customers:,} customers, {report.orders:,} orders, "
        f"{report.order_lines:,} order lines, {report.products:,} products in {report.seconds:.1f} s"
    )


@data_app.command("info")
def data_info(ctx: typer.Context) -> None:
    """Show what is imported: counts, date range, columns with data, quarantined rows, imports."""
    from features.data.store import DataStore
    from features.data.summary import summarize

    settings = _settings(ctx)
    summary = summarize(DataStore(settings.data_dir))
    if summary.version is None:
        out.print(f"No data in {settings.data_dir}. Run `tierwise data import completejourney` to start.")
        raise typer.Exit(ExitCode.OK)
    out.print(f"[bold]{settings.data_dir}[/bold] (version {summary.version})")
    out.print(f"orders from {summary.first_order} to {summary.last_order}")
    for table in summary.tables.values():
        if table.rows:
            empty = f"; empty: {', '.join(table.columns_empty)}" if table.columns_empty else ""
            out.print(f"  {table.name:<20} {table.rows:>12,} rows{empty}")
    if summary.quarantined_by_reason:
        out.print("quarantined rows (table `quarantine`, with the original row):")
        for reason, count in summary.quarantined_by_reason.items():
            out.print(f"  {reason:<32} {count:>10,}")
    else:
        out.print("no quarantined rows")
    for record in summary.imports:
        out.print(
            f"  import {record['import_id']}: {record['source']} — read {record['rows_read']:,} = accepted "
            f"{record['rows_accepted']:,} + quarantined {record['rows_quarantined']:,}; "
            f"orders added {record['orders_added']:,}"
        )


@data_app.command("schema")
def data_schema() -> None:
    """Print the canonical tables and columns (Markdown), as documented in docs/schema.md."""
    from features.data.schema_doc import schema_markdown

    out.print(schema_markdown(), markup=False, highlight=False, soft_wrap=True)


@features_app.command("build")
def features_build(
    ctx: typer.Context,
    as_of: Annotated[
        list[str] | None, typer.Option("--as-of", help="Cutoff date YYYY-MM-DD (repeatable).")
    ] = None,
    cutoffs: Annotated[
        str | None, typer.Option(help="START:END:STEP, e.g. 2017-03-05:2017-12-31:7d (steps in d, w or m).")
    ] = None,
) -> None:
    """Compute point-in-time customer features (orders strictly before each date), one snapshot per date."""
    from features.snapshots import parse_cutoff_range
    from pipelines import build_features

    dates = [_parse_date(d, "--as-of") for d in as_of or []] + (
        parse_cutoff_range(cutoffs) if cutoffs else []
    )
    if not dates:
        raise InputError("give --as-of DATE and/or --cutoffs START:END:STEP")
    settings = _settings(ctx)
    with console.status(f"building features at {len(dates)} cutoff(s)"):
        rows = build_features.build(settings, dates)
    for day, count in rows.items():
        out.print(f"  {day}: {count:,} customers")
    out.print(f"{len(rows)} snapshot(s) → {settings.snapshots_dir}")


@features_app.command("apply")
def features_apply(ctx: typer.Context) -> None:
    """Register the entity, feature views and feature services in the Feast registry."""
    from features import feature_store

    settings = _settings(ctx)
    with console.status("feast apply"):
        store = feature_store.apply(settings)
    names = ", ".join(s.name for s in store.list_feature_services())
    out.print(f"Feast repository {settings.feature_repo_dir}: feature services {names}")


@features_app.command("materialize")
def features_materialize(
    ctx: typer.Context,
    as_of: Annotated[str | None, typer.Option(help="Snapshot date to load (default: the latest).")] = None,
) -> None:
    """Load a feature snapshot into the online store (SQLite, or Redis with TIERWISE_ONLINE_STORE=redis)."""
    from rich.progress import Progress

    from pipelines import build_features

    settings = _settings(ctx)
    day = _parse_date(as_of, "--as-of") if as_of else None
    with Progress(console=console) as progress:
        task = progress.add_task("materializing", total=None)
        chosen, count = build_features.apply_and_materialize(
            settings, day, on_chunk=lambda done, total: progress.update(task, completed=done, total=total)
        )
    out.print(f"online store ({settings.online_store}) holds the {chosen} snapshot: {count:,} customers")


@features_app.command("list")
def features_list(ctx: typer.Context) -> None:
    """The feature catalog: name, view, type, what data it needs, whether the imported data has it."""
    from rich.table import Table

    from features.catalog import FEATURES
    from features.data.store import DataStore
    from features.live_data import open_live_data
    from features.snapshots import capabilities

    settings = _settings(ctx)
    caps = None
    if DataStore(settings.data_dir).live_version() is not None:
        caps = capabilities(open_live_data(settings))
    table = Table("feature", "view", "type", "needs", "in this data", "description")
    for f in FEATURES:
        present = "-" if caps is None else ("yes" if caps.has(f.needs) else "no (null)")
        table.add_row(f.name, f.view, f.dtype, str(f.needs), present, f.description)
    out.print(table)


@app.command("train")
def train_command(
    ctx: typer.Context,
    model: Annotated[ModelChoice, typer.Option(help="Which model to train.")] = ModelChoice.all,
    as_of: Annotated[
        str | None,
        typer.Option(help="Train as if today were this date (default: the day after the last order)."),
    ] = None,
    horizon: Annotated[int, typer.Option(min=7, help="Days the labels look ahead.")] = 90,
    trials: Annotated[int, typer.Option(min=0, help="Optuna trials per model (0: default parameters).")] = 0,
    step: Annotated[int, typer.Option(min=1, help="Days between training cutoffs.")] = 7,
) -> None:
    """Train, test against the baselines, register in MLflow and promote a model that beats its champion."""
    from pipelines import train

    settings = _settings(ctx)
    day = _parse_date(as_of, "--as-of") if as_of else None
    with console.status("training") as status:
        results = train.train(
            settings,
            _model_names(model),
            day,
            horizon,
            trials,
            step,
            on_step=lambda text: status.update(f"training: {text}"),
        )
    for result in results:
        primary = ", ".join(f"{k} {v:.3f}" for k, v in result.test_metrics.items())
        out.print(f"[bold]{result.name}[/bold] v{result.version}: {primary}")
        for base, values in result.baseline_metrics.items():
            out.print(f"   baseline {base}: " + ", ".join(f"{k} {v:.3f}" for k, v in values.items()))
        out.print(
            f"   {'promoted to champion' if result.promoted else 'registered as challenger'}: {result.reason}"
        )
    out.print(f"MLflow: {settings.tracking_uri} (`mlflow ui --backend-store-uri {settings.tracking_uri}`)")


@app.command("backtest")
def backtest_command(
    ctx: typer.Context,
    as_of: Annotated[str, typer.Option(help="Score the champions as of this date.")],
    horizon: Annotated[int, typer.Option(min=7, help="Days after --as-of to compare with.")] = 90,
    model: Annotated[ModelChoice, typer.Option(help="Which model to backtest.")] = ModelChoice.all,
) -> None:
    """Score the champions and the baselines as of a past date against what really happened after it."""
    from pipelines import train

    settings = _settings(ctx)
    with console.status("backtest"):
        report = train.backtest(settings, _parse_date(as_of, "--as-of"), horizon, _model_names(model))
    for name, entry in report.items():
        out.print(f"[bold]{name}[/bold] v{entry['version']} on {entry['customers']:,} customers:")
        out.print("   model: " + ", ".join(f"{k} {v:.3f}" for k, v in entry["model"].items()))
        for base, values in entry["baselines"].items():
            out.print(f"   baseline {base}: " + ", ".join(f"{k} {v:.3f}" for k, v in values.items()))


@app.command("score")
def score_command(
    ctx: typer.Context,
    as_of: Annotated[str | None, typer.Option(help="Snapshot date to score (default: the latest).")] = None,
    policy: Annotated[
        str, typer.Option(help="Tier policy: a preset (lifecycle, rfmp) or a YAML file.")
    ] = "lifecycle",
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

    settings = _settings(ctx)
    day = _parse_date(as_of, "--as-of") if as_of else None
    with console.status("scoring"):
        report = score.score(settings, day, policy, classic, overrides, output)
    out.print(
        f"{report.customers:,} customers scored as of {report.as_of} with {report.policy} → {report.path}"
    )
    for tier, count in report.tier_counts.items():
        out.print(f"  {tier:<10} {count:>10,}  {count / report.customers:6.1%}")
    out.print("models: " + ", ".join(f"{k} v{v}" for k, v in report.model_versions.items()))


@tiers_app.command("report")
def tiers_report(
    ctx: typer.Context,
    policy: Annotated[str, typer.Option(help="Tier policy of the snapshots.")] = "lifecycle",
    as_of: Annotated[str | None, typer.Option(help="Snapshot date (default: the latest).")] = None,
    html: Annotated[
        Path | None,
        typer.Option(help="Where to write the HTML report (default: data/reports/<policy>-<date>.html)."),
    ] = None,
) -> None:
    """Tier sizes and shares, predicted value and ARPU, churn risk per tier, migration since the last snapshot;
    also written as a self-contained HTML page with charts and the alerts."""
    from pipelines import tier_reports

    day = _parse_date(as_of, "--as-of") if as_of else None
    settings = _settings(ctx)
    tables = tier_reports.report(settings, policy, day)
    for name, table in tables.items():
        out.print(f"[bold]{name}[/bold]")
        out.print(table.to_string(float_format=lambda v: f"{v:,.3f}"), markup=False, highlight=False)
    page = tier_reports.html_report(settings, policy, day, html)
    out.print(f"html report: {page}", markup=False, highlight=False, soft_wrap=True)


@tiers_app.command("alerts")
def tiers_alerts(
    ctx: typer.Context,
    policy: Annotated[str, typer.Option(help="Tier policy of the snapshots.")] = "lifecycle",
    as_of: Annotated[str | None, typer.Option(help="Snapshot date (default: the latest).")] = None,
    rules: Annotated[
        Path | None, typer.Option(help="Alert rules (YAML); default: the built-in rules.")
    ] = None,
    output: Annotated[Path | None, typer.Option(help="Where to write the alert records (JSON).")] = None,
) -> None:
    """Evaluate alert rules; exits with code 5 when an alert fires (records are written as JSON)."""
    from pipelines import tier_reports

    day = _parse_date(as_of, "--as-of") if as_of else None
    records = tier_reports.alerts(_settings(ctx), policy, day, rules, output)
    for record in records:
        out.print(f"[{record['severity']}] {record['rule']}: {record['message']}", markup=False)
    if records:
        raise typer.Exit(ExitCode.ALERT)
    out.print("no alert")


@tiers_app.command("backtest")
def tiers_backtest(
    ctx: typer.Context,
    as_of: Annotated[str, typer.Option(help="Assign tiers as of this date, then look at what happened.")],
    horizon: Annotated[int, typer.Option(min=7, help="Days after --as-of to compare with.")] = 90,
    policy: Annotated[str, typer.Option(help="Tier policy.")] = "lifecycle",
) -> None:
    """Predictive vs classic tiers: next-horizon spend per customer and churn rate per tier."""
    from pipelines import tier_reports

    table = tier_reports.policy_backtest(_settings(ctx), policy, _parse_date(as_of, "--as-of"), horizon)
    out.print(table.to_string(index=False, float_format=lambda v: f"{v:,.3f}"), markup=False, highlight=False)


@tiers_app.command("export")
def tiers_export(
    ctx: typer.Context,
    segment: Annotated[
        str, typer.Option(help="at-risk-high-value, dormant-winback, growth-opportunity, new-welcome.")
    ],
    output: Annotated[
        Path, typer.Option(help="CSV or Parquet file for the CRM; the control list goes beside it.")
    ],
    policy: Annotated[str, typer.Option(help="Tier policy of the snapshots.")] = "lifecycle",
    control_share: Annotated[
        float, typer.Option(help="Share held out at random to measure the effect.")
    ] = 0.1,
    as_of: Annotated[str | None, typer.Option(help="Snapshot date (default: the latest).")] = None,
) -> None:
    """Write a campaign list with each customer's benefit, holding out a random control group."""
    from pipelines import tier_reports

    day = _parse_date(as_of, "--as-of") if as_of else None
    result = tier_reports.export(_settings(ctx), policy, segment, output, control_share, day)
    out.print(
        f"{segment}: {len(result.export.treated):,} customers → {result.treated_path}; "
        f"control {len(result.export.control):,} → {result.control_path}"
    )


@models_app.command("list")
def models_list(ctx: typer.Context) -> None:
    """Registered versions of each model, newest first; the champion is marked."""
    from training import registry

    registry.configure(_settings(ctx))
    for name in MODEL_NAMES:
        found = registry.versions(name)
        if not found:
            out.print(f"{name}: not trained yet")
        for v in found:
            mark = "champion" if v.is_champion else "challenger"
            out.print(
                f"{name} v{v.version} ({mark}) as of {v.tags.get('as_of', '?')}, test {v.tags.get('test_cutoff', '?')}: "
                f"{v.tags.get('primary_metric', '')} {v.tags.get('test_metric', '')}"
            )


@models_app.command("promote")
def models_promote(
    ctx: typer.Context,
    name: Annotated[ModelName, typer.Argument(help="Model name.")],
    version: Annotated[int, typer.Argument(help="Version to make champion.")],
) -> None:
    """Make a version the champion by hand (the previous champion is remembered for rollback)."""
    from training import registry

    registry.configure(_settings(ctx))
    registry.promote(name.value, version)
    out.print(f"{name.value} v{version} is champion")


@models_app.command("rollback")
def models_rollback(
    ctx: typer.Context, name: Annotated[ModelName, typer.Argument(help="Model name.")]
) -> None:
    """Give the champion alias back to the previous champion."""
    from training import registry

    registry.configure(_settings(ctx))
    version = registry.rollback(name.value)
    out.print(f"{name.value} v{version} is champion again")


@app.command("serve")
def serve_cmd(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 3000,
    host: Annotated[str, typer.Option(help="Interface to bind (0.0.0.0 for all).")] = "127.0.0.1",
    workers: Annotated[int, typer.Option(min=1, help="Server processes.")] = 1,
    policy: Annotated[
        str, typer.Option(help="Tier policy whose latest snapshot answers `tier`.")
    ] = "lifecycle",
    max_batch: Annotated[int, typer.Option(min=1, help="Most ids per predict_batch call.")] = 1000,
    build: Annotated[
        bool, typer.Option("--build", help="Package the service as a Bento instead of serving.")
    ] = False,
) -> None:
    """Start the prediction API (BentoML): predict, predict_batch, score_features, reload, version."""
    import dataclasses

    from pipelines import serve
    from serving.config import ServeConfig

    settings = _settings(ctx)
    if build:
        out.print(f"built Bento {serve.build_bento(settings)}")
        return
    config = dataclasses.replace(ServeConfig.from_env(), workers=workers, policy=policy, max_batch=max_batch)
    console.print(f"serving {settings.home} on http://{host}:{port} (OpenAPI at /, Ctrl+C to stop)")
    raise typer.Exit(serve.serve(settings, config, host, port))


@app.command("run")
def run(
    ctx: typer.Context,
    source_dir: Annotated[
        Path | None,
        typer.Option(help="Complete Journey files to import if the home is empty (default: the package)."),
    ] = None,
) -> None:
    """The whole pipeline as far as it exists: import (if nothing is imported yet)."""
    from pipelines import full_run

    full_run.run(_settings(ctx), source_dir=source_dir, console=out)


def _parse_date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise InputError(f"{option} {text!r}: expected a date as YYYY-MM-DD") from exc


def main() -> None:
    """Entry point: user errors become one line and a distinct exit code, not a traceback."""
    from features.data.store import StoreBusyError

    try:
        app()
    except InputError as exc:
        console.print(f"[red]error:[/red] {exc}")
        sys.exit(ExitCode.BAD_INPUT)
    except StoreBusyError as exc:
        console.print(f"[red]busy:[/red] {exc}")
        sys.exit(ExitCode.BUSY)
