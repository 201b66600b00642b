"""SQLite conventions shared by every embedded store and the queue: one writer process, WAL, autocommit
unless a transaction is asked for; and how storage faults surface (`StorageError`, `DbFile`).

A store never lets a raw `sqlite3` error escape for a fault of the disk or of its file: it raises a
`StorageError` carrying the HTTP status the web layer answers (507 when the disk is full, 503 when the
file cannot be used), and its `DbFile` tells listeners (the host's storage watch, which reports health)
when writes start failing, when they work again, and when the file was deleted or replaced under it.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote  # not urllib.request's pathname2url (the same on POSIX): it imports http.client


class StorageError(Exception):
    """A store cannot do what it was asked because of its storage: nothing was written. `status` is the
    HTTP answer (507 Insufficient Storage, or 503 when the database cannot be used at all); `kind` names
    the fault for clients and runners (`StorageFull`, `StorageUnavailable`)."""

    def __init__(self, message: str, status: int = 503, kind: str = "StorageUnavailable") -> None:
        super().__init__(message)
        self.status, self.kind = status, kind


_STATUS = {"StorageFull": 507, "StorageUnavailable": 503}


def as_storage_error(e: BaseException) -> StorageError | None:
    """The StorageError behind `e`: itself, or a handler's error that was a host refusal for storage
    (`type` StorageFull / StorageUnavailable, as runners re-raise them); None for anything else."""
    if isinstance(e, StorageError):
        return e
    kind = getattr(e, "type", None)
    if isinstance(kind, str) and kind in _STATUS:
        return StorageError(str(getattr(e, "message", None) or e), _STATUS[kind], kind)
    return None


def storage_payload(e: StorageError) -> dict[str, str]:
    """The JSON body of a 507/503 answer."""
    return {"error": "Insufficient Storage" if e.status == 507 else "Service Unavailable", "type": e.kind,
            "message": str(e)}


class DatabaseOpenError(StorageError):
    """A database cannot be opened at start-up; the message is one line naming the file, the cause and
    what to do."""


# SQLite result codes (primary, by name) that mean the storage, not the statement, is at fault
_FULL = {"SQLITE_FULL"}
_UNUSABLE = ("SQLITE_IOERR", "SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_CORRUPT", "SQLITE_NOTADB",
             "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_PROTOCOL")


def storage_error(e: sqlite3.Error, label: str) -> StorageError | None:
    """The StorageError for a SQLite failure caused by the disk or the file, or None for any other."""
    name = str(getattr(e, "sqlite_errorname", "") or "")
    if name in _FULL:
        return StorageError(f"the {label} database cannot be written: the disk is full", 507, "StorageFull")
    if name.startswith(_UNUSABLE):
        return StorageError(f"the {label} database cannot be used: {e}", 503, "StorageUnavailable")
    return None


def _advice(e: sqlite3.Error) -> str:
    name = str(getattr(e, "sqlite_errorname", "") or "")
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return "run `steppe doctor --repair` to move it aside (it is kept) and start with an empty one"
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return "another process holds it (is another host running on this project?); stop it and retry"
    if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN")):
        return "make the file and its folder writable by this user (or set data_dir), then retry"
    if name.startswith("SQLITE_FULL"):
        return "free some disk space, then retry"
    return "check the file and its folder, or run `steppe doctor`"


log = logging.getLogger("steppe.storage")


def open_db(path: Path | str, schema: str = "", autocheckpoint: bool = True,
            auto_vacuum: bool = False) -> sqlite3.Connection:
    """A connection tuned for one writer process: WAL, and fsync only at checkpoints; `schema` is run on it.
    Without `autocheckpoint`, its commits never checkpoint the WAL: a `Checkpointer` does, off the event loop.
    `auto_vacuum`: a new file gives deleted pages back to the disk (incremental; settable only before its tables).
    Raises DatabaseOpenError (one readable line) when the file cannot be opened as a database."""
    conn: sqlite3.Connection | None = None
    try:
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute("PRAGMA synchronous=NORMAL")  # before WAL: a new file's switch to WAL then syncs once, not thrice
        if auto_vacuum:
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        conn.execute("PRAGMA journal_mode=WAL")
        if not autocheckpoint:
            conn.execute("PRAGMA wal_autocheckpoint=0")
            # a WAL that grew while its checkpoints fell behind is cut back when it starts over: its size on
            # disk then tells how far behind they are (Checkpointer.nudge)
            conn.execute(f"PRAGMA journal_size_limit={Checkpointer.KEEP}")
        if schema:
            conn.executescript(schema)
    except sqlite3.Error as e:
        if conn is not None:
            conn.close()
        raise DatabaseOpenError(f"cannot open database {path}: {e}; {_advice(e)}") from None
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """Group statements into one commit (the connection is otherwise in autocommit mode)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite may have rolled back already (e.g. disk full): don't mask why
            conn.execute("ROLLBACK")
        raise


class Checkpointer:
    """Checkpoints a WAL database from a thread of its own, on its own connection, when nudged, so that the
    commits on the event loop never pay for copying the WAL back and its fsync (about half of a queue
    commit's time otherwise). PASSIVE: it never blocks the writer; durability is the same, a commit is in
    the WAL either way. The thread starts with the first nudge (a command that only reads starts none).

    On a slow disk the commits can outrun the checkpoints, and the WAL would grow as long as they do. Past
    HOLD_AT bytes the writer is told it is `behind`: it then holds back whoever waits for its commits (the
    producers) until the thread's next checkpoint has let the WAL start over (`when_caught_up`)."""

    EVERY = 100  # nudges (commits) between checkpoints: a few hundred WAL pages, as SQLite's own 1000
    # A PASSIVE checkpoint lets the WAL start over only if no commit came while it ran: under a steady
    # stream of commits it would grow without end. Past this many pages (16 MB), a RESTART checkpoint.
    RESTART_AT = 4000
    HOLD_AT = 24 * 2**20  # bytes of WAL on disk
    # A RESTART holds the write lock while it waits for readers of older snapshots, and the writer (on the
    # event loop) waits behind it: it gives up after this long (seconds; SQLite's busy timeout)...
    RESTART_WAIT = 0.2
    RESTART_PAUSE = 1.0  # ...and the next is tried no sooner than this (seconds)
    WARN_AFTER = 5.0  # seconds of failed RESTARTs before a warning: a reader keeps the WAL from starting over
    KEEP = 20 * 2**20  # bytes a WAL is cut back to when it starts over (journal_size_limit): above RESTART_AT

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._due = threading.Event()
        self._closing = False
        self._count = 0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._behind = False  # set by the writer, cleared by the thread after a checkpoint (under _lock)
        self._ended = False  # the thread is gone: nobody would call back
        self._callbacks: list[Callable[[], object]] = []
        self._restart_after = 0.0  # monotonic time before which no RESTART is tried
        self._failing_since: float | None = None  # first RESTART of a streak that could not finish
        self._warned = False

    def nudge(self) -> bool:
        """After a commit: every EVERY-th one wakes the thread. True while the WAL is over HOLD_AT: the
        checkpoints fall behind the commits, and the writer should hold its producers (`when_caught_up`)."""
        self._count += 1
        if self._count >= self.EVERY:
            self._count = 0
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"checkpoint {self.path}", daemon=True)
                self._thread.start()
            if not self._behind and _size(self.path + "-wal") > self.HOLD_AT:
                self._behind = True
            self._due.set()
        return self._behind

    def when_caught_up(self, callback: Callable[[], object]) -> None:
        """Call `callback` (on the checkpointing thread) once the next checkpoint is over, or now if the WAL
        is not behind or no thread runs."""
        with self._lock:
            if self._behind and not self._ended:
                self._callbacks.append(callback)
                return
        callback()

    def _caught_up(self, ended: bool = False) -> None:
        with self._lock:
            self._behind = False
            self._ended = self._ended or ended
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback()
            except Exception as e:  # e.g. the writer's loop closed meanwhile: nobody is waiting any more
                log.debug(f"checkpoint callback of {self.path} failed: {e}")

    def _run(self) -> None:
        try:
            self._checkpoints()
        finally:
            self._caught_up(ended=True)

    def _checkpoints(self) -> None:
        try:  # mode=rw: never create the file (deleted under the host, it must stay gone: DbFile reports it)
            conn = sqlite3.connect(f"file:{quote(str(self.path))}?mode=rw", uri=True, isolation_level=None)
        except sqlite3.Error as e:
            log.warning(f"cannot open {self.path} to checkpoint it: {e}")
            return
        try:
            conn.execute(f"PRAGMA busy_timeout={int(self.RESTART_WAIT * 1000)}")
            conn.execute(f"PRAGMA journal_size_limit={self.KEEP}")
            while True:
                self._due.wait()
                self._due.clear()
                if self._closing:
                    return
                try:
                    _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if (frames >= self.RESTART_AT or self._behind) and time.monotonic() >= self._restart_after:
                        # the writer never paused long enough for the WAL to start over: make it, briefly
                        # holding the writer back (most frames are copied already)
                        busy, frames, _ = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
                        self._restarted(not busy, frames)
                except sqlite3.Error as e:  # the writer's own commits report storage faults; try again later
                    log.debug(f"checkpoint of {self.path} failed: {e}")
                self._caught_up()
        finally:
            conn.close()

    def _restarted(self, done: bool, frames: int) -> None:
        now = time.monotonic()
        if done:
            if self._warned:
                log.info(f"the write-ahead log of {self.path} starts over again")
            self._failing_since, self._warned = None, False
            return
        self._restart_after = now + self.RESTART_PAUSE
        if self._failing_since is None:
            self._failing_since = now
        elif now - self._failing_since >= self.WARN_AFTER and not self._warned:
            self._warned = True
            log.warning(f"the write-ahead log of {self.path} cannot start over ({frames} pages, growing): is a "
                        "read transaction held open on it by another process (a sqlite3 shell)? end it")

    def close(self) -> None:
        """Stop the thread (before the writer's connection closes: the last one to close checkpoints)."""
        self._closing = True
        if self._thread is not None:
            self._due.set()
            self._thread.join()
            self._thread = None


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


class DbFile:
    """One open database file: turns SQLite faults into StorageError, knows whether writes currently fail,
    and notices the file (or its WAL) being deleted or replaced while it is open, after which every call
    is refused: what is written then would vanish at the next start."""

    def __init__(self, conn: sqlite3.Connection, path: Path | str, label: str) -> None:
        self.conn, self.path, self.label = conn, str(path), label
        self.failure: StorageError | None = None  # the last write failure, until a write succeeds again
        self.lost: str | None = None  # why the file can no longer be trusted (deleted or replaced)
        self.listeners: list[Callable[[DbFile], None]] = []
        self._identity = {self.path: _identity(self.path)}
        self._identity[self.path + "-wal"] = _identity(self.path + "-wal")

    @property
    def files(self) -> list[str]:
        return [self.path, self.path + "-wal", self.path + "-shm"]

    def _changed(self) -> None:
        for listener in self.listeners:
            listener(self)

    def guard(self, reading: bool = False) -> _Guard:
        """Around every use of the connection: refuse when the file is lost (unless only `reading`, for
        counts and listings); map storage faults. (A small class, not a generator: state calls are a
        hot path.)"""
        if self.lost is not None and not reading:
            raise StorageError(f"the {self.label} database file was deleted or replaced while the host ran; "
                               "restart the host", 503, "StorageUnavailable")
        return _Guard(self)

    def _failed(self, e: sqlite3.Error) -> StorageError | None:
        error = storage_error(e, self.label)
        if error is None:
            return None
        self.check()
        if self.failure is None or str(self.failure) != str(error):
            self.failure = error
            self._changed()
        return error

    def _succeeded(self) -> None:
        self.failure = None  # a write went through: the fault is over
        self._changed()

    def check(self) -> bool:
        """Compare the files on disk with the ones opened; False (and lost) once one was deleted or
        replaced. A WAL that appears after the check at open is adopted."""
        if self.lost is not None:
            return False
        for path, known in self._identity.items():
            now = _identity(path)
            if known is None:
                self._identity[path] = now
            elif now != known:
                self.lost = f"{path} was {'deleted' if now is None else 'replaced'}"
                self._changed()
                return False
        return True

    def probe(self) -> None:
        """While writes fail: try a tiny write, which clears `failure` when it succeeds."""
        if self.conn.in_transaction:  # a transaction of the owner's (the queue's loop turn): its commit tells
            return
        with self.guard(), transaction(self.conn):
            self.conn.execute("CREATE TABLE IF NOT EXISTS steppe_probe (at REAL)")
            self.conn.execute("INSERT INTO steppe_probe (at) VALUES (?)", (time.time(),))
            self.conn.execute("DELETE FROM steppe_probe")

    def rescue(self) -> str | None:
        """Once lost: copy what the still-open connection sees into `<path>.rescued-<timestamp>`; returns
        the copy's path, or None when that failed too."""
        target = f"{self.path}.rescued-{time.strftime('%Y%m%d-%H%M%S')}"
        try:
            self.conn.execute("VACUUM INTO ?", (target,))
        except sqlite3.Error:
            return None
        return target


class _Guard:
    __slots__ = ("file", "before")

    def __init__(self, file: DbFile) -> None:
        self.file, self.before = file, file.conn.total_changes

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, e: BaseException | None, tb: object) -> None:
        if e is None:
            if self.file.failure is not None and self.file.conn.total_changes > self.before:
                self.file._succeeded()
        elif isinstance(e, sqlite3.Error) and (error := self.file._failed(e)) is not None:
            raise error from None
