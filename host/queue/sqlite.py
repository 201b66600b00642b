"""The durable queue, the embedded default: SQLite in WAL mode under `.steppe/queue.db`.

Writes are group-committed: everything the queue writes in one turn of the event loop (the leases of
`take`, and every `put`, `ack`, `retry` and `bury`) shares one transaction, committed at the end of that
turn, and the callers of `put`, `retry` and `bury` resume only after the commit. An `ack` is not waited
for while writes succeed: it is written with its turn, or with a later one if that turn's commit fails
(the row stays leased meanwhile, and runs again only after a restart, which at-least-once allows). So an accepted
emit is on disk (in the WAL) before `emit` resolves, and a chain of hops pays one commit per loop turn
rather than one per operation. A lease needs no commit of its own before its delivery runs: leases are
all released at the next start (`recover`), and a lease whose commit fails is written again in the next
transaction, before any other take can see its row. Once a step's rows on disk are drained, the
deliveries this process puts for it are taken from memory (no query; their leases are written with the
turn) until a retry, a release or a delayed put makes the disk the only full account again. The WAL
is checkpointed by a thread of its own (`Checkpointer`), never by a commit on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from ..checkpoint import Checkpointer
from ..db import DbFile, open_db
from ..event import Event
from . import sqlite_sql
from .base import DeadLetter, Delivery, Queue, Subscription
from .sqlite_sql import BURY, DELETE_ONE, SCHEMA, STORED, TAKE, TAKE_FIFO, dead_letters_query, decode, insert_rows

log = logging.getLogger("steppe.queue")

_PURGE_EVERY = 60.0
_IN_HAND_MAX = 10_000
_EXACT_FOR = 1.0  # seconds a step is taken from memory before a query looks at its rows on disk again
_ACK_RETRY = 1.0  # seconds: acks whose commit failed are written again by then, if nothing else wrote
CORRUPT = "CorruptRecord"


class SqliteQueue(Queue):
    def __init__(self, path: Path | str) -> None:
        self.path = path
        self._db = open_db(path, SCHEMA, autocheckpoint=False)
        self._checkpointer = Checkpointer(path)
        self.file = DbFile(self._db, path, "queue")
        self._puts: list[tuple[Event, list[Subscription], float | None, asyncio.Future[bool]]] = []
        self._acks: list[int] = []  # acked deliveries not yet deleted in the open transaction
        self._deleted: list[int] = []  # acked deliveries deleted in the open transaction: kept for a rollback
        self._writes: list[tuple[str, tuple[Any, ...]]] = []
        self._waiters: list[asyncio.Future[bool]] = []
        self._flush_scheduled = False
        self._turn_loop: asyncio.AbstractEventLoop  # the loop of the scheduled flush (set with _flush_scheduled)
        # Leases of running deliveries: written in the open transaction (`_leases`), or not yet (`_unwritten`:
        # taken from memory, or rolled back with their transaction), which `_begin` writes before any other
        # statement can see their rows.
        self._leases: list[int] = []
        self._unwritten: list[int] = []
        # Steps whose every unleased row is known to this process (until a loop time): their due deliveries,
        # (id, created_at) in id order, taken from memory with no query. A retry, a release or a delayed or
        # FIFO put ends it; a take that drains the step's rows on disk starts it again.
        self._exact: dict[str, float] = {}
        self._ready: dict[str, deque[tuple[int, float]]] = {}
        self._next_purge = 0.0
        self._window = 0.0
        # Deliveries put by this process and not yet taken: their Event, by row id, so the first take hands
        # it over as it is instead of decoding the stored copy again. The row stays the truth (lease,
        # attempts, ack by id; a retry, a restart or a release reads it back from disk). Bounded: past it
        # (a long backlog), deliveries are read back as usual.
        self._in_hand: dict[int, Event] = {}
        self._closed = False

    # --- group commit
    def _submit(self) -> asyncio.Future[bool]:
        return self._schedule().create_future()

    def _schedule(self) -> asyncio.AbstractEventLoop:
        """The running loop, with this turn's flush scheduled on it. The loop is looked up once per turn
        (asyncio.get_running_loop() costs a getpid() on 3.11), not for each put, ack and take of the turn."""
        if self._flush_scheduled:
            return self._turn_loop
        self._flush_scheduled = True
        loop = self._turn_loop = asyncio.get_running_loop()
        loop.call_soon(self._flush)
        return loop

    def _begin(self, flushing: bool = False) -> None:
        """Open this loop turn's transaction unless it is open (under the caller's guard), with every lease
        handed out written; the end of the turn (`_flush`, unless it is the caller) commits it."""
        if not self._db.in_transaction:
            if not flushing:
                self._schedule()
            self._db.execute("BEGIN IMMEDIATE")
        try:
            if self._unwritten:  # their deliveries run: no take may hand them out again
                ids, self._unwritten = self._unwritten, []
                self._leases.extend(ids)
                self._db.execute("UPDATE deliveries SET leased = 1, attempts = attempts + 1 "
                                 "WHERE id IN (SELECT value FROM json_each(?))", (orjson.dumps(ids).decode(),))
            if self._acks:  # before any take query: a FIFO group's next head is due once its head is gone
                # one statement for the acks so far: a row at a time costs about twice as much
                ids, self._acks = self._acks, []
                self._deleted.extend(ids)
                self._db.execute("DELETE FROM deliveries WHERE id IN (SELECT value FROM json_each(?))",
                                 (orjson.dumps(ids).decode(),))  # text: a blob would be JSONB
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        if self._db.in_transaction:  # SQLite may have rolled back already (e.g. disk full): don't mask why
            self._db.execute("ROLLBACK")
        self._unwritten.extend(self._leases)
        self._leases = []
        self._acks.extend(self._deleted)  # written again with the next transaction
        self._deleted = []

    def _inexact(self, step: str | None = None) -> None:
        """Rows of `step` (None: of any) may now exist that this process does not hold: take by query."""
        if step is None:
            self._exact.clear()
            self._ready.clear()
        else:
            self._exact.pop(step, None)
            self._ready.pop(step, None)

    def _flush(self) -> None:
        self._flush_scheduled = False
        puts, self._puts = self._puts, []
        writes, self._writes = self._writes, []
        waiters, self._waiters = self._waiters, []
        now = time.time()
        results: list[bool] = []
        try:
            with self.file.guard(), self._turn():
                rows: list[Any] = []  # (step, group, event, available_at, created_at) per row, flat
                events: list[tuple[Event, Subscription]] = []  # the event and route of each row
                for event, routes, window, _ in puts:
                    if window is not None:
                        self._window = max(self._window, window)
                        cur = self._db.execute(
                            "INSERT INTO emitted (id, at) VALUES (?, ?) "
                            "ON CONFLICT (id) DO UPDATE SET at = excluded.at WHERE emitted.at <= ?",
                            (event.id, now, now - window))
                        if cur.rowcount == 0:
                            results.append(False)
                            continue
                    # a bytearray, and '' for no group (NULLIF below): the sqlite3 module binds these directly,
                    # while bytes and None first go through its adapter lookup (about a third of a row's cost)
                    blob = bytearray(orjson.dumps(event.as_dict()))
                    for r in routes:
                        group = event.message_group_id if r.fifo and event.message_group_id else ""
                        rows += (r.step, group, blob, now + r.delay, now)
                        events.append((event, r))
                    results.append(True)
                if rows:
                    insert_rows(self._db, rows)
                    # one writer, inside one transaction, AUTOINCREMENT: the rows got consecutive ids
                    last = self._db.execute("SELECT last_insert_rowid()").fetchone()[0]
                for sql, params in writes:
                    self._db.execute(sql, params)
                if now >= self._next_purge and self._window:
                    self._next_purge = now + _PURGE_EVERY
                    self._db.execute("DELETE FROM emitted WHERE at <= ?", (now - self._window,))
        except Exception as e:  # a failed commit must reach every caller, not vanish in a callback
            if self._acks:  # not waited for by anyone: written by a later turn, one at least every second
                asyncio.get_running_loop().call_later(_ACK_RETRY, self._retry_acks)
            for *_, fut in puts:
                if not fut.done():
                    fut.set_exception(e)
            for fut in waiters:
                if not fut.done():
                    fut.set_exception(e)
            return
        behind = self._checkpointer.nudge()
        if rows:
            self._hold(range(last - len(events) + 1, last + 1), events, now)
        if behind and (puts or waiters):  # the WAL outgrows its checkpoints: producers wait for the next one
            loop = asyncio.get_running_loop()
            self._checkpointer.when_caught_up(lambda: loop.call_soon_threadsafe(_resolve, puts, results, waiters))
        else:
            _resolve(puts, results, waiters)

    def _retry_acks(self) -> None:
        if self._acks and not self._closed:
            self._schedule()

    def _hold(self, ids: range, events: list[tuple[Event, Subscription]], now: float) -> None:
        """Keep the events just committed in hand, and due ones of exactly known steps ready to take."""
        if len(self._in_hand) >= _IN_HAND_MAX:
            for _, route in events:
                self._inexact(route.step)
            return
        self._in_hand.update(zip(ids, (e for e, _ in events), strict=True))
        for did, (_, route) in zip(ids, events, strict=True):
            if (ready := self._ready.get(route.step)) is not None:
                if route.delay or route.fifo:
                    self._inexact(route.step)
                else:
                    ready.append((did, now))

    @contextmanager
    def _turn(self) -> Iterator[None]:
        """The turn's transaction, from its first statement (a take may have opened it) to its commit."""
        try:
            self._begin(flushing=True)
            yield
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        self._leases = []
        self._deleted = []

    async def _commit(self, *statements: tuple[str, Sequence[Any]]) -> list[int]:
        """Run these statements now, in the turn's transaction, and resume once it is committed; their
        rowcounts. (Not all-or-nothing within the turn: a failing one rolls the whole turn back.)"""
        counts = []
        self._inexact()
        with self.file.guard():
            try:
                self._begin()
                for sql, params in statements:
                    counts.append(self._db.execute(sql, params).rowcount)
            except BaseException:
                self._rollback()
                raise
        await self._write()
        return counts

    async def _write(self, sql: str | None = None, params: tuple[Any, ...] = ()) -> None:
        if sql is not None:
            self._writes.append((sql, params))
        fut = self._submit()
        self._waiters.append(fut)
        await fut

    # --- the interface
    async def put(self, event: Event, routes: list[Subscription], dedupe_window: float | None = None) -> bool:
        fut = self._submit()
        self._puts.append((event, routes, dedupe_window, fut))
        return await fut

    async def take(self, step: str, limit: int, fifo: bool) -> list[Delivery]:
        in_hand = self._in_hand
        ready = self._ready.get(step)
        if ready is not None and not fifo and self._exact[step] > time.monotonic():
            return self._take_ready(step, ready, limit)
        self._inexact(step)
        with self.file.guard():
            try:
                self._begin()
                rows = self._db.execute(TAKE_FIFO if fifo else TAKE, (step, time.time(), limit)).fetchall()
                # the stored event only of those not in hand (a retry, a delivery from before a restart)
                if missing := [r[0] for r in rows if r[0] not in in_hand]:
                    stored = dict(self._db.execute(STORED, (orjson.dumps(missing).decode(),)).fetchall())
            except BaseException:
                if not self._db.in_transaction:  # the turn's transaction is gone, with its earlier leases
                    self._rollback()
                raise
            self._leases.extend(r[0] for r in rows)
            if len(rows) < limit and not fifo and self._db.execute(
                    "SELECT 1 FROM deliveries WHERE step = ? AND leased = 0 LIMIT 1", (step,)).fetchone() is None:
                self._exact[step], self._ready[step] = time.monotonic() + _EXACT_FOR, deque()
        rows.sort()  # RETURNING gives no order; FIFO order is id order
        taken, corrupt = [], []
        for did, attempts, created_at, last_error in rows:
            if (event := in_hand.pop(did, None)) is None:
                try:
                    event = decode(stored[did])
                except Exception as e:  # one unreadable record must not stop the others
                    corrupt.append((did, f"{CORRUPT}: the stored event cannot be decoded ({type(e).__name__}: {e})"))
                    continue
            taken.append(Delivery(did, step, event, attempts, created_at, last_error))
        if corrupt:
            self._bury_corrupt(step, corrupt)
        return taken

    def _take_ready(self, step: str, ready: deque[tuple[int, float]], limit: int) -> list[Delivery]:
        """Hand out due deliveries this process put, with no query: their leases are written in the turn's
        transaction."""
        taken: list[Delivery] = []
        while ready and len(taken) < limit:
            did, created_at = ready.popleft()
            taken.append(Delivery(did, step, self._in_hand.pop(did), 1, created_at))
        if taken:
            self._unwritten.extend(d.id for d in taken)
            self._schedule()
        return taken

    def _bury_corrupt(self, step: str, corrupt: list[tuple[int, str]]) -> None:
        """Move undecodable deliveries to the dead-letter store as they are (raw bytes kept)."""
        now = time.time()
        with self.file.guard():  # in the turn's transaction, which the take opened
            for did, error in corrupt:
                self._db.execute(BURY, (error, "", now, did))
                self._db.execute(DELETE_ONE, (did,))
        for did, error in corrupt:
            log.error(f"delivery {did} of step {step!r} moved to the dead-letter store: {error}; "
                      "see `steppe dlq list`")

    async def ack(self, delivery: Delivery) -> None:
        if self.file.failure is None and self.file.lost is None:
            self._acks.append(delivery.id)
            self._schedule()  # not waited for: see the module's docstring
            return
        # writes fail: waited for, so the caller learns it and keeps the outcome to record it again
        await self._write(DELETE_ONE, (delivery.id,))

    async def retry(self, delivery: Delivery, delay: float, error: str) -> None:
        delivery.last_error = error
        self._inexact(delivery.step)
        await self._write("UPDATE deliveries SET leased = 0, available_at = ?, last_error = ? WHERE id = ?",
                          (time.time() + delay, error, delivery.id))

    async def bury(self, delivery: Delivery, error: str, stack: str = "") -> None:
        self._writes.append((BURY, (error, stack, time.time(), delivery.id)))
        await self._write(DELETE_ONE, (delivery.id,))

    async def recover(self) -> int:
        return (await self._commit(("UPDATE deliveries SET leased = 0 WHERE leased = 1", ())))[0]

    async def release(self, ids: list[int]) -> int:
        if not ids:
            return 0
        return (await self._commit((f"UPDATE deliveries SET leased = 0, available_at = ? WHERE leased = 1 AND id IN "
                                    f"({','.join('?' * len(ids))})", (time.time(), *ids))))[0]

    async def counts(self) -> dict[str, int]:
        if self._unwritten or self._acks:
            with self.file.guard():
                self._begin()
        with self.file.guard(reading=True):
            by_lease = dict(self._db.execute("SELECT leased, COUNT(*) FROM deliveries GROUP BY leased").fetchall())
            dead = self._db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0]
        return {"ready": by_lease.get(0, 0), "leased": by_lease.get(1, 0), "dead": dead}

    async def waiting_elsewhere(self, steps: set[str]) -> dict[str, int]:
        with self.file.guard(reading=True):  # rows leased but not yet written are counted all the same
            return sqlite_sql.waiting_elsewhere(self._db, steps)

    async def oldest_due(self, steps: list[str]) -> float:
        now, since = time.time(), None
        if self._unwritten or self._acks:
            with self.file.guard():
                self._begin()
        with self.file.guard(reading=True):
            for step in steps:  # walks deliveries_of_step (step, id): stops at the first due one
                row = self._db.execute("SELECT available_at FROM deliveries WHERE step = ? AND leased = 0 "
                                       "AND available_at <= ? ORDER BY id LIMIT 1", (step, now)).fetchone()
                if row is not None:
                    since = row[0] if since is None else min(since, row[0])
        return 0.0 if since is None else now - since

    async def dead(self, step: str | None = None, ids: list[int] | None = None) -> list[DeadLetter]:
        with self.file.guard(reading=True):
            rows = self._db.execute(*dead_letters_query(step, ids)).fetchall()
        letters = []
        for r in rows:
            try:
                event, raw = decode(r[2]), None
            except Exception:
                event, raw = None, bytes(r[2])  # a CorruptRecord: shown as stored
            letters.append(DeadLetter(r[0], r[1], event, r[3], r[4], r[5], r[6], r[7], r[8], raw=raw))
        return letters

    async def replay(self, ids: list[int]) -> int:
        if not ids:
            return 0
        marks, now = ",".join("?" * len(ids)), time.time()
        n, _ = await self._commit(
            ("INSERT INTO deliveries (step, grp, event, available_at, created_at) "
             f"SELECT step, grp, event, ?, ? FROM dead_letters WHERE id IN ({marks}) ORDER BY id", (now, now, *ids)),
            (f"DELETE FROM dead_letters WHERE id IN ({marks})", ids))
        return n

    async def drop(self, ids: list[int]) -> int:
        if not ids:
            return 0
        return (await self._commit((f"DELETE FROM dead_letters WHERE id IN ({','.join('?' * len(ids))})", ids)))[0]

    async def close(self) -> None:
        if self._flush_scheduled or self._acks or self._unwritten:
            self._flush()
        self._closed = True
        self._checkpointer.close()
        self._db.close()


def _resolve(puts: Sequence[tuple[Any, ...]], results: list[bool], waiters: list[asyncio.Future[bool]]) -> None:
    """Resume the callers of a committed turn."""
    for (*_, fut), ok in zip(puts, results, strict=True):
        if not fut.done():
            fut.set_result(ok)
    for fut in waiters:
        if not fut.done():
            fut.set_result(True)
