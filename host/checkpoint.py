"""Checkpointing a WAL database off the event loop (the durable queue's): a thread of its own that copies the
WAL back into the database when nudged, and back-pressure for the writer when it falls behind."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote  # not urllib.request's pathname2url (the same on POSIX): it imports http.client

log = logging.getLogger("steppe.storage")


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
