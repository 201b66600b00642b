"""SQLite conventions shared by every embedded store and the queue: one writer process, WAL, autocommit
unless a transaction is asked for; and how storage faults surface (`StorageError`, `DbFile`).

A store never lets a raw `sqlite3` error escape for a fault of the disk or of its file: it raises a
`StorageError` carrying the HTTP status the web layer answers (507 when the disk is full, 503 when the
file cannot be used), and its `DbFile` tells listeners (the host's storage watch, which reports health)
when writes start failing, when they work again, and when the file was deleted or replaced under it.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .checkpoint import Checkpointer


class StorageError(Exception):
    """A store cannot do what it was asked because of its storage: nothing was written. `status` is the
    HTTP answer (507 Insufficient Storage, or 503 when the database cannot be used at all); `kind` names
    the fault for clients and runners (`StorageFull`, `StorageUnavailable`)."""

    def __init__(self, message: str, status: int = 503, kind: str = "StorageUnavailable") -> None:
        super().__init__(message)
        self.status, self.kind = status, kind


_STATUS = {"StorageFull": 507, "StorageUnavailable": 503}


def as_storage_error(e: BaseException) -> StorageError | None:
    """The StorageError behind `e`: itself, a handler's error that was a host refusal for storage
    (`type` StorageFull / StorageUnavailable, as runners re-raise them), or the Redis backends' refusal
    (out of memory, not answering); None for anything else."""
    if isinstance(e, StorageError):
        return e
    kind = getattr(e, "type", None)
    if isinstance(kind, str) and kind in _STATUS:
        return StorageError(str(getattr(e, "message", None) or e), _STATUS[kind], kind)
    redis_errors = sys.modules.get("redis.exceptions")  # loaded only by a host with a part on Redis
    if redis_errors is not None and isinstance(e, redis_errors.RedisError):
        from .redis_conn import redis_storage_error

        return redis_storage_error(e)
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
