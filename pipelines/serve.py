"""`tierwise serve`: run the BentoML service on a data home, or package it as a Bento.

The service process learns where everything is from environment variables (`TIERWISE_HOME`, the
online store, the MLflow URI and `serving.config.ServeConfig`), set here from the command line, so
it never depends on the directory it was started from.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

from features.settings import HOME_ENV, MLFLOW_ENV, ONLINE_STORE_ENV, REDIS_ENV, Settings
from serving.config import ServeConfig

SERVICE = "serving.service:Tierwise"
#: The folder holding the `serving` package: BentoML imports the service from there.
PROJECT_DIR = Path(__file__).resolve().parents[1]


def service_environment(settings: Settings, config: ServeConfig) -> dict[str, str]:
    """The environment of a service process serving `settings`' home with `config`."""
    env = dict(os.environ)
    env.update(config.environment())
    env[HOME_ENV] = str(settings.home)
    env[ONLINE_STORE_ENV] = settings.online_store
    env[REDIS_ENV] = settings.redis
    if settings.mlflow_uri:
        env[MLFLOW_ENV] = settings.mlflow_uri
    return env


def serve_command(host: str, port: int) -> list[str]:
    return [
        str(Path(sys.executable).parent / "bentoml"),
        "serve",
        SERVICE,
        "--host",
        host,
        "--port",
        str(port),
        "--working-dir",
        str(PROJECT_DIR),
    ]


def serve(settings: Settings, config: ServeConfig, host: str = "127.0.0.1", port: int = 3000) -> NoReturn:
    """Replace this process with the BentoML server.

    Not a child process: SIGTERM from systemd, Docker or Kubernetes and Ctrl+C reach the server itself,
    which stops its workers and frees the port; a `tierwise` parent killed alone would leave the
    server running and bound.
    """
    command = serve_command(host, port)
    os.execve(command[0], command, service_environment(settings, config))


def build_bento(settings: Settings) -> str:
    """Package the service as a Bento (code, locked requirements, image spec); returns its tag.

    The Bento holds code, not data: a container serves the data home mounted at `TIERWISE_HOME`.
    The pinned requirements are exported from `uv.lock` into a copy of `bentofile.yaml` (as its
    `python.packages`) in a temporary folder; nothing is written into the repository.
    """
    import tempfile

    import yaml

    with tempfile.TemporaryDirectory(prefix="tierwise-bento-") as tmp:
        requirements = Path(tmp) / "requirements.txt"
        subprocess.run(
            [
                str(Path(sys.executable).parent / "uv"),
                "export",
                "--frozen",
                "--no-hashes",
                "--no-dev",
                "--no-default-groups",
                "--no-emit-project",
                "--quiet",
                "-o",
                str(requirements),
            ],
            cwd=PROJECT_DIR,
            check=True,
            capture_output=True,
        )
        bentofile = yaml.safe_load((PROJECT_DIR / "bentofile.yaml").read_text())
        pinned = [line for line in requirements.read_text().splitlines() if line and not line.startswith("#")]
        bentofile["python"] = {**bentofile.get("python", {}), "packages": pinned, "lock_packages": False}
        build_file = Path(tmp) / "bentofile.yaml"
        build_file.write_text(yaml.safe_dump(bentofile, sort_keys=False))
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "bentoml"),
                "build",
                "-f",
                str(build_file),
                "--output",
                "tag",
                str(PROJECT_DIR),
            ],
            cwd=PROJECT_DIR,
            check=True,
            capture_output=True,
            text=True,
            env=service_environment(settings, ServeConfig.from_env()),
        )
    return result.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
