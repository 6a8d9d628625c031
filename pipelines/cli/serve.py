"""`tierwise serve` and `tierwise run`: the prediction API and the whole pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipelines.cli.app import (
    app,
    console,
    out,
    parse_period,
    settings_of,
)


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
    """Start the prediction API (BentoML): predict, predict_batch, score_features, reload, admin/version."""
    import dataclasses

    from pipelines import serve
    from serving.config import ServeConfig

    settings = settings_of(ctx)
    if build:
        out.print(f"built Bento {serve.build_bento(settings)}")
        return
    config = dataclasses.replace(ServeConfig.from_env(), workers=workers, policy=policy, max_batch=max_batch)
    console.print(f"serving {settings.home} on http://{host}:{port} (OpenAPI at /, Ctrl+C to stop)")
    if not config.tokens:
        console.print("no API token set: reads from 127.0.0.1 only, /reload refused (set TIERWISE_API_TOKEN)")
    serve.serve(settings, config, host, port)


@app.command("run")
def run(
    ctx: typer.Context,
    source_dir: Annotated[
        Path | None,
        typer.Option(help="Complete Journey files to import if the home is empty (default: the package)."),
    ] = None,
    retrain_on_alert: Annotated[
        bool,
        typer.Option(
            help="Retrain each model a drift or quality alert names; the challenger must beat the champion "
            "and the best baseline to take over."
        ),
    ] = False,
    retrain_every: Annotated[
        str | None,
        typer.Option(
            metavar="PERIOD",
            help="Also retrain each model whose champion was trained on data this much older than today's "
            "(14d, 2w); the promotion rule still decides.",
        ),
    ] = None,
) -> None:
    """The whole pipeline: import (if empty), features, train (models without a champion, or due), score,
    report, monitor."""
    from pipelines import full_run

    full_run.run(
        settings_of(ctx),
        source_dir=source_dir,
        console=out,
        retrain_on_alert=retrain_on_alert,
        retrain_every=parse_period(retrain_every, "--retrain-every") if retrain_every else None,
    )
