"""`tierwise serve`: run the BentoML service on a data home, or package it as a Bento.

`ServiceProcess` runs it in the background for tests and benchmarks. The service process learns where everything is from environment variables (`TIERWISE_HOME`, the
online store, the MLflow URI and `serving.config.ServeConfig`), set here from the command line, so
it never depends on the directory it was started from.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

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


def serve(settings: Settings, config: ServeConfig, host: str = "127.0.0.1", port: int = 3000) -> int:
    """Run the service in the foreground until interrupted; returns its exit code."""
    return subprocess.call(serve_command(host, port), env=service_environment(settings, config))


def build_bento(settings: Settings) -> str:
    """Package the service as a Bento (code, locked requirements, image spec); returns its tag.

    The Bento holds code, not data: a container serves the data home mounted at `TIERWISE_HOME`.
    """
    requirements = PROJECT_DIR / "requirements.lock.txt"
    uv = Path(sys.executable).parent / "uv"
    subprocess.run(
        [
            str(uv),
            "export",
            "--frozen",
            "--no-hashes",
            "--no-dev",
            "--no-emit-project",
            "-o",
            str(requirements),
        ],
        cwd=PROJECT_DIR,
        check=True,
        capture_output=True,
    )
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "bentoml"),
            "build",
            "-f",
            "bentofile.yaml",
            "--output",
            "tag",
            ".",
        ],
        cwd=PROJECT_DIR,
        check=True,
        capture_output=True,
        text=True,
        env=service_environment(settings, ServeConfig.from_env()),
    )
    return result.stdout.strip().splitlines()[-1].removeprefix("__tag__:")


@dataclass
class ServiceProcess:
    """A service started in the background (tests, benchmarks): its own process group, a log file."""

    process: subprocess.Popen
    url: str
    log: Path

    @classmethod
    def start(
        cls, command: list[str], port: int, log: Path, env: dict[str, str] | None = None
    ) -> ServiceProcess:
        process = subprocess.Popen(
            command,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env if env is not None else dict(os.environ),
        )
        return cls(process, f"http://127.0.0.1:{port}", log)

    @classmethod
    def tierwise(cls, home: Path, log: Path, env: dict[str, str] | None = None) -> ServiceProcess:
        """`tierwise --home HOME serve` on a free port."""
        port = free_port()
        command = [
            str(Path(sys.executable).parent / "tierwise"),
            "--home",
            str(home),
            "serve",
            "--port",
            str(port),
        ]
        return cls.start(command, port, log, env)

    def wait(self, path: str = "/readyz", timeout: float = 240) -> None:
        """Until `path` answers 200. Raises RuntimeError with the log's tail if the process dies or is late."""
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"service exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}"
                )
            try:
                if httpx.get(self.url + path, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise RuntimeError(f"{self.url}{path} not 200 after {timeout:g} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
