"""The canonical tables on disk: versioned Parquet folders switched atomically.

Layout under the data folder::

    tables -> versions/000007          (a symlink: the one readable state)
    versions/000007/orders/month=2017-01/part-<import>-0.parquet
    versions/000007/order_lines/...
    versions/000007/customers/part-0.parquet

A write never touches the live version. `DataStore.transaction()` creates the next version as hard
links of the current files (no bytes copied), lets the caller add or replace tables in it, and makes
it live by swapping the `tables` symlink with one `rename` — atomic on POSIX. If the writer fails
or is killed, the half-written version is never pointed to and is removed by the next transaction.
DuckDB and Spark read `tables/<name>` like any Parquet folder.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from features.data import write_stages
from features.errors import InputError
from features.files import fsync_path

VERSIONS_KEPT = 2


class StoreBusyError(RuntimeError):
    """Another process is writing to the same data folder."""


class DataStore:
    """Versioned canonical tables under one data folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.live_link = self.root / "tables"
        self.versions_dir = self.root / "versions"

    def live_version(self) -> Path | None:
        """The folder of the live version, resolved once so a reader sees one consistent state."""
        if not self.live_link.is_symlink():
            return None
        return self.live_link.resolve()

    def table_dir(self, table: str, version: Path | None = None) -> Path | None:
        """The folder of `table` in `version` (default: live), or None when it has no data."""
        base = version or self.live_version()
        if base is None:
            return None
        folder = base / table
        return folder if folder.is_dir() and any(folder.rglob("*.parquet")) else None

    def has_table(self, table: str) -> bool:
        return self.table_dir(table) is not None

    @contextmanager
    def transaction(self) -> Iterator[Path]:
        """Yield a new version folder (a hard-linked copy of the live one); make it live on success.

        Raises:
            StoreBusyError: another transaction holds the data folder's lock.
        """
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        key = self.root.resolve()
        if key in _OPEN_TRANSACTIONS:  # the writer lock is re-entrant; two drafts at once are not
            raise StoreBusyError(f"{self.root} has a transaction open in this process already")
        with self.writing(), _open_transaction(key):
            self._remove_abandoned_versions()
            live = self.live_version()
            number = int(live.name) + 1 if live else 1
            draft = self.versions_dir / f"{number:06d}"
            if live:
                shutil.copytree(live, draft, copy_function=os.link)
            else:
                draft.mkdir()
            write_stages.reached("draft_linked")
            try:
                yield draft
            except BaseException:
                shutil.rmtree(draft, ignore_errors=True)
                raise
            write_stages.reached("tables_written")
            _fsync_tree(draft)
            write_stages.reached("draft_synced")
            self._point_live_to(draft)
            write_stages.reached("live_switched")
            self._remove_old_versions()

    def _point_live_to(self, version: Path) -> None:
        tmp_link = self.root / ".tables.next"
        if tmp_link.is_symlink() or tmp_link.exists():
            tmp_link.unlink()
        tmp_link.symlink_to(version.relative_to(self.root))
        os.replace(tmp_link, self.live_link)
        fsync_path(self.root)

    def _remove_abandoned_versions(self) -> None:
        """Drafts newer than the live version belong to writers that died: nobody can read them."""
        live = self.live_version()
        for folder in self.versions_dir.iterdir():
            if live is None or folder.name > live.name:
                shutil.rmtree(folder, ignore_errors=True)

    def _remove_old_versions(self) -> None:
        """Keep the live version and the one before it (a reader may still be on it)."""
        folders = sorted(p for p in self.versions_dir.iterdir() if p.is_dir())
        for folder in folders[:-VERSIONS_KEPT]:
            shutil.rmtree(folder, ignore_errors=True)

    @contextmanager
    def writing(self, wait_seconds: float = 0.0) -> Iterator[None]:
        """Hold the home's one writer lock for the block: every job that writes to a home takes it.

        Re-entrant within a process (a job may call another that takes it too). Another process's
        writer makes this wait up to `wait_seconds`, then raise `StoreBusyError` saying so.
        """
        key = self.root.resolve()
        with _HELD_GUARD:
            held = _HELD.get(key)
            if held is not None:
                held[1] += 1
        if held is not None:
            try:
                yield
            finally:
                with _HELD_GUARD:
                    held[1] -= 1
            return
        self.root.mkdir(parents=True, exist_ok=True)
        # Opened without truncating and without following a link: a planted `.lock` link cannot make
        # the lock clobber another file.
        try:
            handle = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            raise InputError(f"{self.root / '.lock'}: cannot open the lock file ({exc.strerror})") from None
        try:
            _acquire(handle, self.root, wait_seconds)
            with _HELD_GUARD:
                _HELD[key] = [handle, 1]
            try:
                yield
            finally:
                with _HELD_GUARD:
                    del _HELD[key]
        finally:
            os.close(handle)


#: Writer locks this process holds: home data folder → [file descriptor, depth].
_HELD: dict[Path, list] = {}
_HELD_GUARD = threading.Lock()
#: Seconds a job waits for another writer of the same home (`TIERWISE_LOCK_WAIT`); imports do not wait.
LOCK_WAIT_ENV = "TIERWISE_LOCK_WAIT"
DEFAULT_LOCK_WAIT = 30.0


#: Data folders with a transaction open in this process.
_OPEN_TRANSACTIONS: set[Path] = set()


@contextmanager
def _open_transaction(key: Path) -> Iterator[None]:
    _OPEN_TRANSACTIONS.add(key)
    try:
        yield
    finally:
        _OPEN_TRANSACTIONS.discard(key)


def job_lock_wait() -> float:
    """How long a batch job waits for the home's writer lock."""
    text = os.environ.get(LOCK_WAIT_ENV)
    try:
        return float(text) if text else DEFAULT_LOCK_WAIT
    except ValueError:
        raise InputError(f"{LOCK_WAIT_ENV}={text!r}: expected seconds") from None


def _acquire(handle: int, root: Path, wait_seconds: float) -> None:
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                waited = f" (waited {wait_seconds:g} s)" if wait_seconds else ""
                raise StoreBusyError(
                    f"{root} is being written by another process{waited}; retry later"
                ) from None
            time.sleep(0.2)


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*.parquet"):
        fsync_path(path)
