"""Services started in the background for tests and benchmarks: the Tierwise service (its own process
group, a log file, a wait until it is ready, a stop that leaves nothing running), a throwaway Redis,
a throwaway PostgreSQL cluster and nginx in front of a service (`deploy/nginx/tierwise.conf`). Test
scaffolding, not product code.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
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
        with contextlib.suppress(ProcessLookupError):  # the group is gone: a service that failed to start
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


#: The edge proxy's configuration, with @@...@@ placeholders (see its header).
NGINX_TEMPLATE = Path(__file__).resolve().parents[1] / "deploy" / "nginx" / "tierwise.conf"


class EdgeProxy:
    """nginx with `deploy/nginx/tierwise.conf` in front of a service, on a free port of 127.0.0.1, in
    the foreground (`daemon off`, its own process group) with a temporary prefix folder; `stop` stops
    it and deletes the folder."""

    def __init__(self, binary: str, upstream: str, reads_in_flight: int = 16):
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="tierwise-nginx-"))
        self.folder.chmod(0o755)  # run as root, nginx's workers are `nobody`
        self.config = self.folder / "tierwise.conf"
        values = {
            "PREFIX": str(self.folder),
            "LISTEN": f"127.0.0.1:{self.port}",
            "UPSTREAM": upstream.removeprefix("http://"),
            "READS_IN_FLIGHT": str(reads_in_flight),
        }
        text = NGINX_TEMPLATE.read_text()
        for name, value in values.items():
            text = text.replace(f"@@{name}@@", value)
        self.config.write_text(text)
        self.process = subprocess.Popen(
            [binary, "-p", str(self.folder), "-c", str(self.config), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=(self.folder / "stderr.log").open("w"),
            start_new_session=True,
        )
        for _ in range(100):
            if self.process.poll() is not None:
                errors = (self.folder / "stderr.log").read_text()
                self.stop()
                raise RuntimeError(f"nginx exited with {self.process.returncode}: {errors}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nginx did not listen on port {self.port}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop nginx (SIGTERM: its fast shutdown) and delete its folder."""
        try:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(timeout=10)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def postgres_bin_dir() -> Path | None:
    """The `bin/` folder of Debian's PostgreSQL server (`/usr/lib/postgresql/<major>/bin`, the newest
    major if several are installed), or None. Debian keeps `initdb` and `pg_ctl` off the PATH."""
    found = sorted(
        (path.parent for path in Path("/usr/lib/postgresql").glob("*/bin/initdb")),
        key=lambda folder: int(folder.parent.name) if folder.parent.name.isdigit() else 0,
    )
    return found[-1] if found else None


class PostgresServer:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (trust authentication, superuser `postgres`, no
    fsync) in a temporary folder of its own; `stop` stops it and deletes the folder.

    `initdb` and `postgres` refuse to run as root: as root they run as the `postgres` system user
    (`setpriv` execs them, so the process we wait for is postgres itself), which then owns the folder;
    a pytest `tmp_path` under root's private folder would be out of its reach. `postgres` runs in the
    foreground, not through `pg_ctl start`, so that no orphaned server outlives the test.
    """

    def __init__(self, bin_dir: Path):
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="tierwise-postgres-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.process: subprocess.Popen | None = None
        as_owner = []
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
            as_owner = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]
        try:
            initdb = [str(bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust"]
            done = subprocess.run(
                [*as_owner, *initdb, "-E", "UTF8", "--no-sync"],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(f"initdb exited with {done.returncode}:\n{done.stdout}{done.stderr}")
            server = [
                str(bin_dir / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-k",
                str(self.folder),
            ]
            self.process = subprocess.Popen(
                [*as_owner, *server, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
                stdout=self.log.open("w"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self._wait()
        except BaseException:
            self.stop()
            raise

    def _wait(self, timeout: float = 60) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"postgres exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}"
                )
            try:
                psycopg.connect(self.url(), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                time.sleep(0.1)
        raise RuntimeError(f"postgres not ready after {timeout:g} s:\n{self.log.read_text()[-3000:]}")

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy / libpq URL of `database` on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database; returns its URL."""
        import psycopg

        # CREATE DATABASE cannot run inside a transaction.
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def query(self, database: str, sql: str) -> list[tuple]:
        """The rows `sql` returns in `database`."""
        import psycopg

        with psycopg.connect(self.url(database)) as connection:
            return connection.execute(sql).fetchall()

    def stop(self) -> None:
        """Stop the server (SIGINT: PostgreSQL's fast shutdown) and delete its folder, data included."""
        try:
            if self.process is not None and self.process.poll() is None:
                self.process.send_signal(signal.SIGINT)
                try:
                    self.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(timeout=10)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
