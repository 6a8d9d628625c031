"""`tierwise data ...`: import, generate and inspect order data."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from features.errors import InputError
from pipelines.cli.app import (
    Format,
    OutputFormat,
    console,
    data_app,
    out,
    parse_date,
    print_rows,
    progress_bar,
    settings_of,
)
from pipelines.exit_codes import ExitCode


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
    timezone: Annotated[
        str | None,
        typer.Option(
            help="The shop's time zone (e.g. Asia/Shanghai): timestamps without an offset are read in it, "
            "dayparts and weekends computed in it. Recorded by the first import (default UTC); later "
            "imports use it."
        ),
    ] = None,
    timestamp_format: Annotated[
        str | None,
        typer.Option(help="strptime format when timestamps are not ISO-8601, e.g. '%d/%m/%Y %H:%M'."),
    ] = None,
    source_dir: Annotated[
        Path | None,
        typer.Option(help="For completejourney: a folder of its Parquet files (default: the package)."),
    ] = None,
    encoding: Annotated[
        str,
        typer.Option(
            help="Text encoding of a CSV file: utf-8, gb18030, gbk, latin-1 (UTF-16 is found by its BOM)."
        ),
    ] = "utf-8",
    max_quarantine_share: Annotated[
        float,
        typer.Option(
            min=0.0, max=1.0, help="Refuse the import when more than this share of rows fails for one reason."
        ),
    ] = 0.5,
) -> None:
    """Import orders into the canonical tables; bad rows are quarantined with a reason, never dropped."""
    from pipelines import import_data

    settings = settings_of(ctx)
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
                encoding=encoding,
                max_quarantine_share=max_quarantine_share,
            )
    out.print(f"[bold]{report.source}[/bold] → {settings.data_dir}")
    out.print(report.reconciliation())
    for reason, count in report.quarantined_by_reason.items():
        out.print(f"  quarantined {count:,} × {reason}")


@data_app.command("push")
def data_push(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(
            help="A file of order events (JSON Lines, or a JSON array); '-' reads standard input."
        ),
    ],
    output: Format = OutputFormat.table,
) -> None:
    """Send order events as they happen: each is checked like an imported row, logged durably, and
    applied at once (features, predictions, tier), as `POST /orders` does. Refused events are kept
    in the event log's quarantine; the next import writes the accepted ones into the tables."""
    import json
    import sys
    from dataclasses import asdict

    from pipelines.push_events import push

    settings = settings_of(ctx)
    text = sys.stdin.read() if source == "-" else _read_text(Path(source))
    pushed = push(settings, text, "stdin" if source == "-" else Path(source).name)
    receipt = pushed.receipt
    refused = [o for o in receipt.outcomes if o.status == "refused"]
    if output is OutputFormat.json:
        answer = {
            "accepted": receipt.count("accepted"),
            "present": receipt.count("present"),
            "refused": len(refused),
            "results": [{**asdict(o), "line": pushed.lines[o.index]} for o in receipt.outcomes],
            "tier_changes": [asdict(c) for c in receipt.tier_changes],
            "tiers_not_computed": pushed.without_tiers,
        }
        sys.stdout.write(json.dumps(answer, indent=1, default=str) + "\n")
    else:
        out.print(
            f"read {len(receipt.outcomes):,} = accepted {receipt.count('accepted'):,} + already present "
            f"{receipt.count('present'):,} + quarantined {len(refused):,}"
        )
        for change in receipt.tier_changes:
            out.print(
                f"  {change.customer_id}: {change.from_tier or '-'} → {change.to_tier} ({change.order_id})"
            )
    if refused:
        first = refused[0]
        raise InputError(
            f"line {pushed.lines[first.index]}: {first.message} ({len(refused)} of {len(receipt.outcomes)} "
            "events refused and kept in the event log's quarantine; the others were applied)"
        )


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such file") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


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
    plant_campaign: Annotated[
        str | None,
        typer.Option(
            metavar="DATE",
            help="Also plant a randomized campaign launched on DATE with a known effect (+25% order rate "
            "for at-risk customers, none for loyal ones), recorded as campaign 'planted' with its truth.",
        ),
    ] = None,
    plant_window: Annotated[int, typer.Option(min=7, help="Days the planted campaign works.")] = 90,
    half_life_days: Annotated[
        float | None,
        typer.Option(
            min=1,
            help="One acquisition cohort instead of a steady shop: every customer joins in the first four "
            "weeks and their order rate halves every this many days (a population whose buying decays).",
        ),
    ] = None,
) -> None:
    """Generate a synthetic grocery dataset at any scale, written in chunks (memory bounded)."""
    from features.data.store import DataStore
    from features.data.synth import generate
    from pipelines.import_data import summarizer

    settings = settings_of(ctx)
    store = DataStore(settings.data_dir)
    if store.has_table("orders") and not replace:
        raise InputError(f"{settings.data_dir} already holds orders; pass --replace or choose another --home")
    with progress_bar("generating customers") as update:
        report = generate(
            store,
            customers,
            seed,
            start=parse_date(start, "--start"),
            days=days,
            half_life_days=half_life_days,
            now=datetime.now(UTC),
            on_chunk=update,
            summarize=summarizer(settings),
        )
    out.print(
        f"synthetic data → {settings.data_dir}: {report.customers:,} customers, {report.orders:,} orders, "
        f"{report.order_lines:,} order lines, {report.products:,} products in {report.seconds:.1f} s"
    )
    if plant_campaign:
        from pipelines.plant_campaign import plant_campaign as plant

        planted = plant(settings, parse_date(plant_campaign, "--plant-campaign"), plant_window, seed=seed)
        out.print(
            f"planted campaign {planted.name} on {planted.as_of}: {planted.treated:,} treated, "
            f"{planted.control:,} control, {planted.extra_orders:,} extra orders; true effect "
            f"{planted.true_effect_orders:.3f} orders, {planted.true_effect_spend:.2f} spend per customer"
        )


@data_app.command("info")
def data_info(ctx: typer.Context, output: Format = OutputFormat.table) -> None:
    """Show what is imported: counts, date range, columns with data, quarantined rows, imports."""
    import dataclasses
    import json
    import sys

    from features.data.store import DataStore
    from features.data.summary import summarize

    settings = settings_of(ctx)
    summary = summarize(DataStore(settings.data_dir))
    if output is OutputFormat.json:
        sys.stdout.write(json.dumps(dataclasses.asdict(summary), indent=1, default=str) + "\n")
        return
    if output is OutputFormat.csv:
        rows = [
            {"table": t.name, "rows": t.rows, "columns_empty": " ".join(t.columns_empty)}
            for t in summary.tables.values()
        ]
        print_rows(rows, ["table", "rows", "columns_empty"], output)
        return
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
