"""The `tierwise` application, its command groups, the global `--home` option and the option types
that several commands share (`--as-of`, `--policy`, `--model`).

Heavy libraries (DuckDB, Feast, MLflow, Evidently) are imported inside the commands that use them,
so `tierwise --help` answers at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from features.errors import InputError
from features.model_table import MODEL_NAMES
from features.settings import ENGINE_ENV, ENGINES, HOME_ENV, Settings

if TYPE_CHECKING:
    import pandas as pd
    from rich.table import Table

app = typer.Typer(help="Predictive customer tiering for grocery e-commerce.", no_args_is_help=True)
data_app = typer.Typer(help="Import, generate and inspect order data.", no_args_is_help=True)
features_app = typer.Typer(
    help="Build customer features and manage the Feast feature store.", no_args_is_help=True
)
models_app = typer.Typer(
    help="The MLflow model registry: versions, champions, rollback.", no_args_is_help=True
)
tiers_app = typer.Typer(
    help="Tier reports, alerts and campaign lists from the tier snapshots.", no_args_is_help=True
)
app.add_typer(data_app, name="data")
app.add_typer(features_app, name="features")
app.add_typer(models_app, name="models")
app.add_typer(tiers_app, name="tiers")

#: Progress and errors (stderr); results (stdout).
console = Console(stderr=True, emoji=False)
out = Console(emoji=False)

#: A model of the model table, as a command-line choice.
ModelName = StrEnum("ModelName", {name: name for name in MODEL_NAMES})
#: A model, or all of them.
ModelChoice = StrEnum("ModelChoice", {**{name: name for name in MODEL_NAMES}, "all": "all"})


#: `--engine`: the engines of `features.settings.ENGINES`.
Engine = StrEnum("Engine", {name: name for name in ENGINES})


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


#: `--format` of commands that list things: a table for people, CSV or JSON for scripts.
Format = Annotated[
    OutputFormat,
    typer.Option("--format", help="table (for a terminal; CSV when piped, never truncated), csv or json."),
]
#: `--as-of DATE` of commands that read a dated snapshot.
AsOf = Annotated[str | None, typer.Option("--as-of", help="Snapshot date YYYY-MM-DD (default: the latest).")]
#: `--policy` of commands that read or write tier snapshots.
PolicyName = Annotated[str, typer.Option(help="Tier policy: a preset (lifecycle, rfmp) or a YAML file.")]


def model_names(choice: ModelChoice) -> list[str]:
    return list(MODEL_NAMES) if choice == "all" else [choice.value]


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            out.print(f"tierwise {version('tierwise')}", highlight=False)
        except PackageNotFoundError:
            out.print("tierwise (not installed)", highlight=False)
        raise typer.Exit()


@app.callback()
def global_options(
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
    engine: Annotated[
        Engine | None,
        typer.Option(
            "--engine",
            envvar=ENGINE_ENV,
            help="Engine of the heavy batch steps: duckdb (embedded, default) or spark "
            "(master: TIERWISE_SPARK_MASTER, default local[*]).",
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show the libraries' own log lines and warnings.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    quiet_libraries(verbose)
    ctx.obj = Settings.resolve(home, engine=engine.value if engine else None)


def quiet_libraries(verbose: bool) -> None:
    """Quiet on success: the libraries' deprecation warnings, INFO lines and progress bars are for
    their own developers, not for someone running a job (`-v` keeps them)."""
    import logging
    import os
    import warnings

    if verbose:
        logging.basicConfig(level=logging.INFO)
        return
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    # Some libraries reset the warning filters when they are imported (after this runs), so the
    # display itself drops deprecation notices; every other warning is still shown.
    show = warnings.showwarning

    def show_unless_deprecation(message, category, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        if issubclass(category, DeprecationWarning | PendingDeprecationWarning | FutureWarning) or (
            "Deprecat" in category.__name__
        ):
            return
        show(message, category, *args, **kwargs)

    warnings.showwarning = show_unless_deprecation
    for name in ("mlflow", "alembic", "feast", "evidently", "litestar", "bentoml", "py.warnings"):
        logging.getLogger(name).setLevel(logging.ERROR)


def settings_of(ctx: typer.Context) -> Settings:
    """The settings the global options resolved."""
    return ctx.find_root().obj


def print_rows(rows: list[dict], columns: list[str], output: OutputFormat) -> None:
    """Rows for people or scripts: a rich table on a terminal; CSV when piped or asked (nothing is cut
    to the terminal's width); JSON on request."""
    import csv
    import json
    import sys

    if output is OutputFormat.json:
        sys.stdout.write(json.dumps(rows, indent=1, default=str) + "\n")
    elif output is OutputFormat.csv or not out.is_terminal:
        writer = csv.DictWriter(sys.stdout, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        from rich.table import Table

        table = Table(*columns)
        for row in rows:
            table.add_row(*(str(row.get(c, "")) for c in columns))
        out.print(table)


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[int, int], None]]:
    """A bar with counts on stderr while a long step runs (`update(done, total)`); it disappears when
    the step ends, so a successful command leaves only its result."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task(description, total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)


def print_tables(tables: dict[str, pd.DataFrame], output: OutputFormat) -> None:
    """Named tables for people or scripts. On a terminal: each as a table, numbers rounded for reading
    (0.047, 2,027.42). Piped or `csv`: one CSV of all rows, a `table` column naming each row's table,
    full precision. `json`: `{name: [row, ...]}`, full precision."""
    import json
    import sys

    import pandas as pd

    frames = {
        name: frame.reset_index() if _has_named_index(frame) else frame for name, frame in tables.items()
    }
    if output is OutputFormat.json:
        content = {
            name: json.loads(frame.to_json(orient="records", date_format="iso"))
            for name, frame in frames.items()
        }
        sys.stdout.write(json.dumps(content, indent=1) + "\n")
    elif output is OutputFormat.csv or not out.is_terminal:
        every = [frame.assign(table=name)[["table", *frame.columns]] for name, frame in frames.items()]
        if every:
            pd.concat(every, ignore_index=True).to_csv(sys.stdout, index=False, lineterminator="\n")
    else:
        for name, frame in frames.items():
            out.print(people_table(frame, name))


def people_table(frame: pd.DataFrame, title: str | None = None) -> Table:
    """`frame` (its named index as the first columns) as a rich table with numbers `for_people`."""
    from rich.table import Table

    if _has_named_index(frame):
        frame = frame.reset_index()
    table = Table(*map(str, frame.columns), title=title, title_justify="left")
    for row in frame.itertuples(index=False):
        table.add_row(*(for_people(value) for value in row))
    return table


def _has_named_index(frame: pd.DataFrame) -> bool:
    return any(name is not None for name in frame.index.names)


def for_people(value: object) -> str:
    """A number as people read it in a table: thousands separated, three significant decimals."""
    import numbers

    import numpy as np

    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Number):
        return "" if value is None else str(value)
    if isinstance(value, numbers.Integral):
        return f"{value:,}"
    if not np.isfinite(value):
        return "–"
    return f"{value:,.2f}" if abs(value) >= 100 else f"{value:.3f}"


def parse_period(text: str, option: str) -> timedelta:
    """`14d`, `2w` → a number of days."""
    import re

    found = re.fullmatch(r"\s*(\d+)\s*([dw])\s*", text.lower())
    if not found or int(found[1]) == 0:
        raise InputError(f"{option} {text!r}: expected a period like 14d or 2w")
    return timedelta(days=int(found[1]) * (7 if found[2] == "w" else 1))


def parse_date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise InputError(f"{option} {text!r}: expected a date as YYYY-MM-DD") from exc
