"""`tierwise features ...`: feature snapshots and the Feast feature store."""

from __future__ import annotations

from typing import Annotated

import typer

from features.errors import InputError
from pipelines.cli.app import (
    Format,
    OutputFormat,
    console,
    features_app,
    out,
    parse_date,
    print_rows,
    progress_bar,
    settings_of,
)


@features_app.command("build")
def features_build(
    ctx: typer.Context,
    as_of: Annotated[
        list[str] | None, typer.Option("--as-of", help="Cutoff date YYYY-MM-DD (repeatable).")
    ] = None,
    cutoffs: Annotated[
        str | None, typer.Option(help="FIRST:LAST:STEP, e.g. 2017-03-05:2017-12-31:7d (steps in d, w or m).")
    ] = None,
) -> None:
    """Compute point-in-time customer features (orders strictly before each date), one snapshot per date."""
    from features.snapshots import parse_cutoff_range
    from pipelines import build_features

    dates = [parse_date(d, "--as-of") for d in as_of or []] + (parse_cutoff_range(cutoffs) if cutoffs else [])
    if not dates:
        raise InputError("give --as-of DATE and/or --cutoffs FIRST:LAST:STEP")
    settings = settings_of(ctx)
    with progress_bar("building feature snapshots (cutoffs)") as update:
        rows = build_features.build(settings, dates, on_progress=update)
    for day, count in rows.items():
        out.print(f"  {day}: {count:,} customers")
    out.print(f"{len(rows)} snapshot(s) → {settings.snapshots_dir}")


@features_app.command("apply")
def features_apply(ctx: typer.Context) -> None:
    """Register the entity, feature views and feature services in the Feast registry."""
    from features import feature_store

    settings = settings_of(ctx)
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
    from pipelines import build_features

    settings = settings_of(ctx)
    day = parse_date(as_of, "--as-of") if as_of else None
    with progress_bar("loading the online store (customers)") as update:
        chosen, count = build_features.apply_and_materialize(settings, day, on_chunk=update)
    out.print(f"online store ({settings.online_store}) holds the {chosen} snapshot: {count:,} customers")


@features_app.command("list")
def features_list(ctx: typer.Context, output: Format = OutputFormat.table) -> None:
    """The feature catalog: name, view, type, what data it needs, whether the imported data has it."""
    from features.catalog import FEATURES
    from features.data.store import DataStore
    from features.live_data import open_live_data
    from features.snapshots import capabilities

    settings = settings_of(ctx)
    caps = None
    if DataStore(settings.data_dir).live_version() is not None:
        caps = capabilities(open_live_data(settings))
    rows = [
        {
            "feature": f.name,
            "view": f.view,
            "type": f.dtype,
            "needs": str(f.needs),
            "in_this_data": "-" if caps is None else ("yes" if caps.has(f.needs) else "no (null)"),
            "description": f.description,
        }
        for f in FEATURES
    ]
    print_rows(rows, ["feature", "view", "type", "needs", "in_this_data", "description"], output)


@features_app.command("profile")
def features_profile(
    ctx: typer.Context,
    customers: Annotated[list[str] | None, typer.Argument(help="Customer ids (default: everyone).")] = None,
    as_of: Annotated[
        str | None, typer.Option(help="Cutoff date YYYY-MM-DD (default: the latest snapshot).")
    ] = None,
    output: Format = OutputFormat.table,
) -> None:
    """Habit profiles: each customer's share of the year's orders per weekday (1 Monday - 7 Sunday,
    shop's local time) and share of the year's spend per department, largest first."""
    from pipelines.build_features import habit_profiles

    settings = settings_of(ctx)
    day = parse_date(as_of, "--as-of") if as_of else settings.feature_snapshots.choose(None)
    profiles = habit_profiles(settings, day, customers or None)
    if customers and profiles.empty:
        raise InputError(f"no orders in the year before {day} for {', '.join(customers[:5])}")
    rows = [{**row, "share": round(row["share"], 4)} for row in profiles.to_dict("records")]
    print_rows(rows, ["customer_id", "kind", "key", "share"], output)
