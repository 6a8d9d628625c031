"""Order events applied in a process of their own, beside the service's worker.

Applying an event is tens of short DuckDB queries, a Feast push and a few model calls, each handing
the interpreter back and forth. In the worker that also answers `predict`, every hand-back waits for
the event loop's next switch: under `predict` traffic an event took 494–508 ms p50 to its answer,
against 180 ms in-process without it (`benchmarks/bench_events.py`, `bench_event_floor.py`). Here the worker sends each
`POST /orders` body to a child process running `serving.events.OrderEvents` (its own interpreter,
on the other core) and waits for the receipt; `predict` never shares a lock with it.

The child is `python -m serving.event_process FD` on one end of a socket pair, speaking pickled
messages (`multiprocessing.connection`). It holds its own champions; the worker sends the key of the
answers it serves with each request (`serving.answers.answer_key`) and the child reloads when its own
differs, so event answers are stored for the models the worker serves. It applies what an earlier
process logged but did not apply before it reports ready, and it exits when the worker's end of the
socket closes, however the worker stopped (a SIGKILL included); a child that died is started again
by the next request.
"""

from __future__ import annotations

import itertools
import logging
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

from features.errors import InputError

logger = logging.getLogger("tierwise.events")  # not __name__: the child runs as __main__

#: Seconds a new child may take to load its models and apply pending events before it counts as failed.
START_SECONDS = 300

#: The answer of a request whose child stopped before answering it (`submit` sends it once more).
STOPPED = ("stopped", "the order event process stopped; accepted events stay logged")


class EventProcessError(RuntimeError):
    """The child could not start, died, or failed a request (the message says which and why)."""


class EventProcess:
    """`OrderEvents.submit` in a child process, with the worker's tier-change callback and live key.

    Thread-safe: requests from the worker's threads are sent as they come, applied together by the
    child as `OrderEvents` applies concurrent requests, and answered by request id.
    """

    def __init__(
        self,
        live_key: Callable[[], str | None],
        on_tier_change: Callable[[Any], None] | None = None,
        wait_seconds: float = 60,
    ) -> None:
        self._live_key = live_key
        self._on_tier_change = on_tier_change or (lambda change: None)
        self._wait_seconds = wait_seconds
        self._lock = threading.Lock()  # starting the child, sending
        self._numbers = itertools.count()
        self._waiting: dict[int, Future] = {}
        self._child: subprocess.Popen | None = None
        self._loading: Connection | None = None  # a child started, not yet ready
        self._conn: Connection | None = None  # the ready child's
        self._spawn()

    def ready(self) -> None:
        """Wait until the child the constructor started has applied what was pending (it loads its
        models meanwhile, while the worker loads its own). Raises `EventProcessError` if it failed."""
        with self._lock:
            if self._loading is not None:
                self._await_ready()

    @property
    def pid(self) -> int | None:
        """The child's process id (None while none runs)."""
        return self._child.pid if self._child is not None else None

    def submit(self, bodies: list[Any], source: str) -> Any:
        """The child's `OrderEvents.submit(bodies, source)` receipt; its input errors raised here as
        `InputError`, anything else as `EventProcessError` (accepted events stay logged).

        A child that stops before answering is started again and the request sent once more: a
        replay is harmless (an event it had logged is `present`, and the new child applies it)."""
        for attempt in (1, 2):
            kind, value = self._ask(bodies, source)
            if kind != STOPPED[0] or attempt == 2:
                break
        if kind == "input_error":
            raise InputError(value)
        if kind != "ok":
            raise EventProcessError(value)
        for change in value.tier_changes:
            self._on_tier_change(change)
        return value

    def _ask(self, bodies: list[Any], source: str) -> tuple[str, Any]:
        future: Future = Future()
        with self._lock:
            if self._loading is not None:
                self._await_ready()
            elif self._child is None or self._child.poll() is not None or self._conn is None:
                self._spawn()
                self._await_ready()
            number = next(self._numbers)
            waiting = self._waiting
            waiting[number] = future
            try:
                self._conn.send(("submit", number, (bodies, source, self._live_key())))  # type: ignore[union-attr]
            except OSError:
                waiting.pop(number, None)
                self._conn = None  # gone: the next request starts another
                return STOPPED
        return future.result(timeout=self._wait_seconds)

    def close(self) -> None:
        """Ask the child to stop after its requests, and wait for it."""
        with self._lock:
            child, conn = self._child, self._conn or self._loading
            self._child = self._conn = self._loading = None
        if child is None or conn is None:
            return
        try:
            conn.send(("stop", None, None))
            child.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            child.kill()
        conn.close()

    def _spawn(self) -> None:
        """Start a child (after killing one whose socket is gone)."""
        if self._child is not None and self._child.poll() is None:
            self._child.kill()  # its end of the socket is closed: it is on its way out
        ours, theirs = socket.socketpair()
        self._child = subprocess.Popen(
            [sys.executable, "-m", "serving.event_process", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
        )
        theirs.close()
        self._conn, self._loading = None, Connection(ours.detach())

    def _await_ready(self) -> None:
        """Wait until the started child applied what was pending (its tier changes counted)."""
        child, conn = self._child, self._loading
        assert child is not None and conn is not None
        self._loading = None
        try:
            if not conn.poll(START_SECONDS):
                raise EventProcessError(f"order event process not ready after {START_SECONDS} s")
            try:
                kind, value = conn.recv()
            except EOFError:
                raise EventProcessError(
                    f"order event process exited with {child.wait()} while starting"
                ) from None
            if kind == "error":
                raise EventProcessError(value)
        except EventProcessError:
            child.kill()
            conn.close()
            self._child = None
            raise
        for change in value:
            self._on_tier_change(change)
        self._conn, self._waiting = conn, {}
        threading.Thread(
            target=self._answers, args=(conn, self._waiting), daemon=True, name="event-answers"
        ).start()

    def _answers(self, conn: Connection, waiting: dict[int, Future]) -> None:
        """Hand each answer to the request waiting for it; when this child is gone, fail the rest of
        its requests (not those of a child started since)."""
        while True:
            try:
                number, answer = conn.recv()
            except (EOFError, OSError):
                break
            future = waiting.pop(number, None)
            if future is not None:
                future.set_result(answer)
        with self._lock:
            lost = [waiting.pop(n) for n in list(waiting)]
            if self._conn is conn:
                self._conn = None  # gone: the next request starts another
        for future in lost:
            future.set_result(STOPPED)


def _serve(conn: Connection) -> None:
    """The child: `OrderEvents` with its own champions, one request per thread."""
    from features.settings import Settings
    from serving.config import ServeConfig
    from serving.events import OrderEvents
    from serving.predictor import Predictor

    config = ServeConfig.from_env()
    settings = Settings.resolve()
    predictor: Predictor | None
    try:
        predictor = Predictor(settings, config.policy, config.reason_excluded_views)
    except Exception:  # as in the worker: features are updated, tiers are not
        logger.exception("tierwise: order events apply without models")
        predictor = None
    try:
        events = OrderEvents(settings, lambda: predictor)
        conn.send(("ready", events.apply_pending()))
    except Exception as exc:
        logger.exception("tierwise: order events unavailable")
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    sending, reloading = threading.Lock(), threading.Lock()

    def handle(number: int, bodies: list[Any], source: str, key: str | None) -> None:
        try:
            if predictor is not None and key and predictor.live.answer_key != key:
                with reloading:
                    if predictor.live.answer_key != key:
                        predictor.reload()
            answer: tuple[str, Any] = ("ok", events.submit(bodies, source=source))
        except InputError as exc:
            answer = ("input_error", str(exc))
        except Exception as exc:
            logger.exception("tierwise: order events could not be applied")
            answer = ("error", f"order events could not be applied; accepted ones are logged: {exc}")
        with sending:
            conn.send((number, answer))

    with ThreadPoolExecutor(config.threads, thread_name_prefix="events") as pool:
        while True:
            try:
                kind, number, payload = conn.recv()
            except (EOFError, OSError):  # the worker is gone
                break
            if kind == "stop":
                break
            pool.submit(handle, number, *payload)
    events.close()


if __name__ == "__main__":
    # Into the worker's log: Tierwise's own lines (tier changes for a CRM), other libraries' warnings.
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    logging.getLogger("tierwise").setLevel(logging.INFO)
    _serve(Connection(int(sys.argv[1])))
