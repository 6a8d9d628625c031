"""Services started in the background for tests and benchmarks: the Tierwise service (its own process
group, a log file, a wait until it is ready, a stop that leaves nothing running) and a throwaway
Redis. Test scaffolding, not product code.
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


class RedisServer:
    """A throwaway `redis-server` on 127.0.0.1 (no RDB, no AOF), stopped by `stop`."""

    def __init__(self, binary: str, folder: Path):
        self.port = free_port()
        command = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        self.process = subprocess.Popen([*command, "--dir", str(folder)], stdout=subprocess.DEVNULL)
        for _ in range(100):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not listen on port {self.port}")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
