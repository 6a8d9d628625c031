"""`tierwise ui`: the MLflow, Feast and Evidently UIs of a home, started together on localhost.

Each UI is the library's own server, started as a child process. `tierwise ui` prints their
addresses, waits, and on Ctrl+C or SIGTERM stops all three and waits for them: no server is left
bound to its port.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from features.settings import Settings
from pipelines.cli.app import app, console, out, settings_of

#: Seconds each UI gets to stop after SIGTERM before it is killed.
STOP_SECONDS = 10


def remote_mlflow(settings: Settings) -> str | None:
    """The tracking server's address when the home's MLflow is a server (it has its own UI), else None."""
    uri = settings.tracking_uri
    return uri if uri.startswith(("http://", "https://")) else None


def ui_commands(settings: Settings, host: str, ports: dict[str, int]) -> dict[str, list[str]]:
    """The command of each UI server for `settings`' home (no MLflow server when the home already
    uses one: `remote_mlflow`)."""
    from features.feature_store import apply
    from pipelines.monitor import workspace_dir

    bin_dir = Path(sys.executable).parent
    workspace = workspace_dir(settings)
    workspace.mkdir(parents=True, exist_ok=True)
    settings.mlruns_dir.mkdir(parents=True, exist_ok=True)
    apply(settings)  # Feast's UI reads feature_store.yaml and the registry
    commands = {
        "mlflow": [
            str(bin_dir / "mlflow"),
            "server",
            "--backend-store-uri",
            settings.tracking_uri,
            "--host",
            host,
            "--port",
            str(ports["mlflow"]),
            "--workers",
            "1",
        ],
        "feast": [
            str(bin_dir / "feast"),
            "-c",
            str(settings.feature_repo_dir),
            "ui",
            "--host",
            host,
            "--port",
            str(ports["feast"]),
        ],
        "evidently": [
            str(bin_dir / "evidently"),
            "ui",
            "--workspace",
            str(workspace),
            "--host",
            host,
            "--port",
            str(ports["evidently"]),
        ],
    }
    if remote_mlflow(settings):
        del commands["mlflow"]
    return commands


@app.command("ui")
def ui(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to bind (0.0.0.0 for all).")] = "127.0.0.1",
    mlflow_port: Annotated[int, typer.Option(min=1, max=65535, help="MLflow UI port.")] = 5000,
    feast_port: Annotated[int, typer.Option(min=1, max=65535, help="Feast UI port.")] = 8888,
    evidently_port: Annotated[int, typer.Option(min=1, max=65535, help="Evidently UI port.")] = 8000,
) -> None:
    """Start the MLflow (runs, registry), Feast (features, lineage) and Evidently (monitoring) UIs; Ctrl+C stops them."""
    ports = {"mlflow": mlflow_port, "feast": feast_port, "evidently": evidently_port}
    settings = settings_of(ctx)
    commands = ui_commands(settings, host, ports)
    # Each server in its own process group, so stopping it reaches the workers it starts too.
    children = {
        name: subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        for name, command in commands.items()
    }
    addresses = {name: f"http://{host}:{port}" for name, port in ports.items()}
    addresses["mlflow"] = remote_mlflow(settings) or addresses["mlflow"]
    for name, address in addresses.items():
        out.print(f"{name:<10} {address}", markup=False, highlight=False)
    console.print("Ctrl+C stops them")

    def stop(signum: int, _frame: object) -> None:
        raise typer.Exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    try:
        while all(child.poll() is None for child in children.values()):
            time.sleep(0.5)
        failed = [name for name, child in children.items() if child.poll() is not None]
        console.print(f"error: the {', '.join(failed)} UI stopped; stopping the others", markup=False)
        raise typer.Exit(1)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    finally:
        _stop_all(children)


def _stop_all(children: dict[str, subprocess.Popen]) -> None:
    for child in children.values():
        _signal_group(child, signal.SIGTERM)
    for child in children.values():
        try:
            child.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            _signal_group(child, signal.SIGKILL)
            child.wait()
        _signal_group(child, signal.SIGKILL)  # workers that outlived their parent


def _signal_group(child: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signum)
