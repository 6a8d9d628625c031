"""`tierwise personas fit / list`: customer personas (how they shop), fitted, named and registered."""

from __future__ import annotations

from typing import Annotated

import typer

from features.errors import InputError
from pipelines.cli.app import AsOf, Format, OutputFormat, app, parse_date, print_tables, settings_of

personas_app = typer.Typer(help="Customer personas: who shops how.", no_args_is_help=True)
app.add_typer(personas_app, name="personas")

PROFILE_COLUMNS = ["persona_id", "persona", "customers", "share", "traits"]


@personas_app.command("fit")
def personas_fit(
    ctx: typer.Context,
    as_of: AsOf = None,
    seed: Annotated[int, typer.Option(help="Sampling and K-means seed.")] = 0,
    output: Format = OutputFormat.table,
) -> None:
    """Fit personas on a feature snapshot (starting from the champion's, so ids keep their meaning),
    register them in MLflow as `personas` and print each one's size and traits."""
    from pipelines import personas

    report = personas.fit(settings_of(ctx), parse_date(as_of, "--as-of") if as_of else None, seed)
    print_tables(
        {f"personas v{report.version} as of {report.as_of}": report.profile[PROFILE_COLUMNS]}, output
    )


@personas_app.command("list")
def personas_list(ctx: typer.Context, output: Format = OutputFormat.table) -> None:
    """The champion personas: id, name (with staff's renames) and distinctive traits."""
    import pandas as pd

    from training.personas import champion_personas

    model = champion_personas(settings_of(ctx))
    if model is None:
        raise InputError("no personas yet: run `tierwise personas fit`")
    rows = pd.DataFrame(
        {
            "persona_id": model.ids,
            "persona": [model.names[i] for i in model.ids],
            "traits": [", ".join(model.traits.get(i, [])) for i in model.ids],
        }
    ).sort_values("persona_id")
    print_tables({"personas": rows}, output)
