"""Storage faults inside the host process, on the real SQLite queue: undecodable records, a supervised
worker that crashes, a disk that fills up under running deliveries (a real tmpfs), database files deleted
under the host, and the backlog age reported in health."""

from __future__ import annotations

import asyncio
import inspect
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tmpfs import fill, small_tmpfs

from steppe.checkpoint import Checkpointer
from steppe.db import DbFile, StorageError
from steppe.event import Event
from steppe.health import Health
from steppe.queue import Delivery, DeliveryWorker, MemoryQueue, SqliteQueue, StepPolicy, Subscription, with_retries
from steppe.storage_watch import StorageWatch
from steppe.tasks import TaskSupervisor

ROUTE = [Subscription("S")]
POLICY = {"S": StepPolicy("S", "python")}


def event(n: int, pad: int = 0) -> Event:
    return Event(topic="t", data={"n": n, "pad": "p" * pad}, trace_id=f"tr{n}")


async def until(pred, timeout: float, what: str) -> None:  # noqa: ANN001
    """Poll pred() (a bool, or an awaitable of one) until it holds, within `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (await value if inspect.isawaitable(value := pred()) else value):
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@pytest.fixture
async def queue(tmp_path: Path) -> AsyncIterator[SqliteQueue]:
    q = SqliteQueue(tmp_path / "queue.db")
    yield q
    await q.close()


async def test_an_undecodable_record_goes_to_the_dead_letters_and_the_rest_are_delivered(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    first = SqliteQueue(tmp_path / "queue.db")
    for n in range(10):
        await first.put(event(n), ROUTE)
    await first.close()
    with sqlite3.connect(tmp_path / "queue.db") as other:  # truncate one stored blob, as seen on disk
        (blob,) = other.execute("SELECT event FROM deliveries WHERE id = 4").fetchone()
        other.execute("UPDATE deliveries SET event = ? WHERE id = 4", (blob[:12],))
    # read back at the next start (a delivery put by the running host is handed over from memory the
    # first time, see the next test)
    queue = SqliteQueue(tmp_path / "queue.db")
    with caplog.at_level(logging.ERROR, logger="steppe.queue"):
        taken = await queue.take("S", 100, fifo=False)
    assert sorted(d.event.data["n"] for d in taken) == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    (letter,) = await queue.dead()
    assert letter.error.startswith("CorruptRecord: ") and letter.event is None
    assert letter.raw == blob[:12]
    shown = letter.as_dict()
    assert shown["raw"] == letter.raw.decode() and shown["event"] is None
    assert "CorruptRecord" in caplog.text and "delivery 4" in caplog.text
    assert await queue.counts() == {"ready": 0, "leased": 9, "dead": 1}
    await queue.close()


async def test_a_delivery_handed_over_from_memory_is_read_back_from_disk_when_it_runs_again(
        queue: SqliteQueue, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for n in range(3):
        await queue.put(event(n), ROUTE)
    with sqlite3.connect(tmp_path / "queue.db") as other:  # the stored copy of delivery 2 goes bad
        (blob,) = other.execute("SELECT event FROM deliveries WHERE id = 2").fetchone()
        other.execute("UPDATE deliveries SET event = ? WHERE id = 2", (blob[:12],))
    taken = await queue.take("S", 100, fifo=False)  # the events this host put, as it put them
    assert [(d.id, d.event.data["n"], d.attempts) for d in taken] == [(1, 0, 1), (2, 1, 1), (3, 2, 1)]
    await queue.retry(taken[1], 0.0, "boom")
    with caplog.at_level(logging.ERROR, logger="steppe.queue"):
        assert await queue.take("S", 100, fifo=False) == []  # read back from disk: undecodable
    (letter,) = await queue.dead()
    assert (letter.id, letter.attempts, letter.raw) == (2, 2, blob[:12])
    assert letter.error.startswith("CorruptRecord: ") and "delivery 2" in caplog.text
    assert await queue.counts() == {"ready": 0, "leased": 2, "dead": 1}


async def test_the_delivery_worker_restarts_after_a_crash_and_health_says_so(
        queue: SqliteQueue, caplog: pytest.LogCaptureFixture) -> None:
    health = Health()
    tasks = TaskSupervisor(health, backoff=0.05, keep_for=0.6)
    ran: list[int] = []

    async def inner(d: Delivery, p: StepPolicy) -> None:
        ran.append(d.event.data["n"])

    worker = DeliveryWorker(queue, poll=0.05)
    worker.handle = with_retries(inner, queue, base=0.01, cap=0.01, wake=worker.wake)
    worker.set_policies(POLICY)
    real, broken = queue._db, sqlite3.connect(":memory:")
    broken.close()
    queue._db = broken  # every take now raises ProgrammingError: an unexpected failure of the loop
    with caplog.at_level(logging.ERROR, logger="steppe.tasks"):
        worker.start(tasks.spawner("delivery worker"))
        await until(lambda: tasks.restarts.get("delivery worker", 0) >= 2, 5, "two restarts")
    (reason,) = health.as_dict()["reasons"]
    assert reason["status"] == "degraded"
    assert reason["reason"].startswith("delivery worker restarted after ProgrammingError: ")
    assert "Traceback" in caplog.text and "delivery worker stopped on an unexpected error" in caplog.text
    queue._db = real
    await queue.put(event(1), ROUTE)
    worker.wake()
    await until(lambda: ran == [1], 5, "the delivery after the restart")
    await until(lambda: health.status == "ok", 5, "the restart to leave health")
    await worker.stop(1)
    tasks.close()


async def test_a_full_disk_answers_storage_full_and_unrecorded_outcomes_are_written_once_it_can() -> None:
    with small_tmpfs("2m") as disk:
        queue = SqliteQueue(disk / "queue.db")
        health = Health()
        watch = StorageWatch(health, queue, [queue.file], lambda: ["S"], interval=0.1)
        gate = asyncio.Event()
        runs: list[int] = []

        async def inner(d: Delivery, p: StepPolicy) -> None:
            runs.append(d.event.data["n"])
            await gate.wait()

        worker = DeliveryWorker(queue, poll=0.05)
        worker.handle = with_retries(inner, queue, base=0.01, cap=0.01, wake=worker.wake)
        worker.set_policies(POLICY)
        for n in range(3):
            await queue.put(event(n), ROUTE)
        worker.start()
        await until(lambda: len(runs) == 3, 5, "three running deliveries")
        filler = fill(disk)
        with pytest.raises(StorageError) as full:
            await queue.put(event(9, pad=20_000), ROUTE)
        assert (full.value.status, full.value.kind) == (507, "StorageFull")
        assert health.as_dict()["reasons"] == [{"component": "storage:queue", "status": "failing",
                                                "reason": "the queue database cannot be written: the disk is full",
                                                "since": health.as_dict()["reasons"][0]["since"]}]
        gate.set()  # the handlers finish, but their acks cannot be written
        await until(lambda: len(worker.unrecorded) == 3, 5, "three unrecorded outcomes")
        assert (await queue.counts())["leased"] == 3
        filler.unlink()
        await watch.check_once()  # the probe write succeeds: the fault is over
        assert health.status == "ok"
        await until(lambda: _empty(queue), 5, "the three acks written")
        assert sorted(runs) == [0, 1, 2]  # recorded, not run again
        await worker.stop(1)
        await queue.close()


async def test_a_lease_whose_commit_fails_is_written_again_before_any_take() -> None:
    """A take's lease is committed with the rest of its loop turn; when that commit fails, the delivery
    already runs, so its lease is written again before anything else can take its row."""
    with small_tmpfs("2m") as disk:
        queue = SqliteQueue(disk / "queue.db")
        for n in range(2):
            await queue.put(event(n), ROUTE)
        filler = fill(disk)
        [running] = await queue.take("S", 1, fifo=False)  # leased in this turn's transaction...
        with pytest.raises(StorageError):
            await queue.put(event(9, pad=20_000), ROUTE)  # ...which the full disk rolls back
        filler.unlink()
        again = await queue.take("S", 10, fifo=False)
        assert [(d.id, d.event.data["n"], d.attempts) for d in again] == [(2, 1, 1)]  # never delivery 1 twice
        await asyncio.sleep(0)  # the turn commits
        with sqlite3.connect(disk / "queue.db") as other:  # on disk, as a restart would find them
            assert other.execute("SELECT id, leased, attempts FROM deliveries ORDER BY id").fetchall() == [
                (1, 1, 1), (2, 1, 1)]
        await queue.ack(running)
        assert await queue.counts() == {"ready": 0, "leased": 1, "dead": 0}
        await queue.close()


async def test_an_ack_whose_commit_fails_is_written_by_a_later_turn_with_no_one_waiting() -> None:
    """An ack is not waited for while writes succeed. When its turn's commit fails after all, the ack is
    kept and written again, within a second even if nothing else writes; the delivery meanwhile stays
    leased, so it is never handed out twice."""
    with small_tmpfs("2m") as disk:
        queue = SqliteQueue(disk / "queue.db")
        for n in range(2):
            await queue.put(event(n), ROUTE)
        [running] = await queue.take("S", 1, fifo=False)
        await asyncio.sleep(0)  # its lease is committed
        filler = fill(disk)
        await queue.ack(running)  # returns at once: no write has failed yet
        with pytest.raises(StorageError):
            await queue.put(event(9, pad=20_000), ROUTE)  # the turn's commit fails, the ack's with it
        filler.unlink()

        def on_disk() -> list[int]:
            with sqlite3.connect(disk / "queue.db") as other:
                return [r[0] for r in other.execute("SELECT id FROM deliveries ORDER BY id")]

        assert on_disk() == [1, 2]
        await until(lambda: on_disk() == [2], 3, "the ack written by a later turn")
        assert [d.event.data["n"] for d in await queue.take("S", 10, fifo=False)] == [1]  # not delivery 1 again
        await queue.close()


async def _empty(queue: SqliteQueue) -> bool:
    return await queue.counts() == {"ready": 0, "leased": 0, "dead": 0}


async def test_a_deleted_database_is_noticed_refused_and_rescued(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    queue = SqliteQueue(tmp_path / "queue.db")
    health = Health()
    watch = StorageWatch(health, queue, [queue.file], lambda: ["S"])
    for n in range(5):
        await queue.put(event(n), ROUTE)
    for path in tmp_path.glob("queue.db*"):
        path.unlink()
    with caplog.at_level(logging.ERROR, logger="steppe.storage"):
        await watch.check_once()
    assert health.status == "failing"
    assert "deleted or replaced" in health.as_dict()["reasons"][0]["reason"]
    assert str(tmp_path / "queue.db") in caplog.text and "was deleted" in caplog.text
    with pytest.raises(StorageError) as refused:
        await queue.put(event(6), ROUTE)
    assert refused.value.status == 503
    (rescued,) = tmp_path.glob("queue.db.rescued-*")
    with sqlite3.connect(rescued) as copy:
        assert copy.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0] == 5
    await queue.close()


async def test_a_replaced_database_is_noticed(tmp_path: Path) -> None:
    queue = SqliteQueue(tmp_path / "queue.db")
    file: DbFile = queue.file
    (tmp_path / "other.db").write_bytes((tmp_path / "queue.db").read_bytes())
    (tmp_path / "other.db").replace(tmp_path / "queue.db")
    assert not file.check()
    assert file.lost == f"{tmp_path / 'queue.db'} was replaced"
    await queue.close()


async def test_the_backlog_age_turns_health_degraded_and_back(queue: SqliteQueue) -> None:
    health = Health()
    watch = StorageWatch(health, queue, [queue.file], lambda: ["S", "Other"], backlog_age_warn=0.2)
    await queue.put(event(0), [Subscription("S", delay=3600)])  # not due: never counts as waiting
    for n in range(1, 5):
        await queue.put(event(n), [Subscription("S"), Subscription("Other")])
    await watch.check_once()
    assert health.status == "ok"
    await asyncio.sleep(0.3)
    assert 0.3 <= await queue.oldest_due(["S"]) < 1.0
    await watch.check_once()
    (reason,) = health.as_dict()["reasons"]
    assert reason["component"] == "queue:backlog" and reason["status"] == "degraded"
    assert reason["reason"].startswith("9 delivery(ies) queued; the oldest due one has waited ")
    for step in ("S", "Other"):
        for d in await queue.take(step, 10, fifo=False):
            await queue.ack(d)
    await watch.check_once()
    assert health.status == "ok" and await queue.oldest_due(["S", "Other"]) == 0.0


async def test_the_memory_queue_reports_the_same_backlog_age() -> None:
    queue = MemoryQueue()
    await queue.put(event(0), [Subscription("S", delay=3600)])
    await queue.put(event(1), ROUTE)
    await asyncio.sleep(0.1)
    assert 0.1 <= await queue.oldest_due(["S", "Other"]) < 1.0
    (d,) = await queue.take("S", 10, fifo=False)
    assert await queue.oldest_due(["S"]) == 0.0
    await queue.release([d.id])
    assert 0.0 <= await queue.oldest_due(["S"]) < 0.1  # released: due again from now


async def test_the_wal_is_checkpointed_off_the_event_loop_and_stays_bounded(queue: SqliteQueue,
                                                                             tmp_path: Path) -> None:
    # the queue's commits never checkpoint (wal_autocheckpoint=0), and these come without a pause (a PASSIVE
    # checkpoint alone would never let the WAL start over): without its checkpointing thread the WAL would
    # grow by every commit, some 60 MB here
    for n in range(4000):
        await queue.put(event(n, pad=1000), ROUTE)
    assert (tmp_path / "queue.db-wal").stat().st_size < 30_000_000
    with sqlite3.connect(tmp_path / "queue.db") as other:
        assert other.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0] == 4000


class _SlowDisk(sqlite3.Connection):
    """The checkpointing thread's connection on a slow disk: each checkpoint takes 0.3 s longer."""

    def execute(self, sql: str, *args):  # noqa: ANN002, ANN201
        if "wal_checkpoint" in sql:
            time.sleep(0.3)
        return super().execute(sql, *args)


async def test_producers_wait_for_checkpoints_that_fall_behind_and_the_wal_stays_bounded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # seen in CI: on a loaded machine the commits outran the checkpointing thread, and the WAL of the test
    # above reached 38 MB. Here every checkpoint is slow: without back-pressure the WAL grows by every
    # commit made while one runs (some 60 MB over these puts)
    connect = sqlite3.connect

    def checkpointer_on_a_slow_disk(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if kwargs.get("uri"):  # only the checkpointing thread opens its database by URI
            kwargs["factory"] = _SlowDisk
        return connect(*args, **kwargs)

    monkeypatch.setattr("steppe.checkpoint.sqlite3.connect", checkpointer_on_a_slow_disk)
    queue = SqliteQueue(tmp_path / "queue.db")
    try:
        largest = 0
        for n in range(4000):
            await queue.put(event(n, pad=1000), ROUTE)
            if n % 100 == 0:
                largest = max(largest, (tmp_path / "queue.db-wal").stat().st_size)
        assert largest < 30_000_000
        assert (await queue.counts())["ready"] == 4000
    finally:
        await queue.close()
    with sqlite3.connect(tmp_path / "queue.db") as other:
        assert other.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0] == 4000


async def test_a_reader_that_keeps_the_wal_from_starting_over_neither_stalls_nor_fails_emits(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # seen: a read transaction held open on queue.db by another process (a sqlite3 shell; `steppe doctor`
    # on a large file) made the checkpointing thread's RESTART wait 5 s for it holding the write lock, the
    # event loop waited behind it, and then the emit failed: "database is locked" (503)
    monkeypatch.setattr(Checkpointer, "WARN_AFTER", 0.5, raising=False)
    monkeypatch.setattr(Checkpointer, "RESTART_PAUSE", 0.2, raising=False)
    queue = SqliteQueue(tmp_path / "queue.db")
    await queue.put(event(0), ROUTE)
    reader = sqlite3.connect(tmp_path / "queue.db", isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM deliveries").fetchone()  # holds this snapshot until COMMIT
    worst, n = 0.0, 1
    try:
        with caplog.at_level(logging.INFO, logger="steppe.storage"):
            deadline = time.monotonic() + 30
            while "cannot start over" not in caplog.text:
                assert time.monotonic() < deadline, "no warning about the WAL that cannot start over"
                started = time.monotonic()
                await queue.put(event(n, pad=1000), ROUTE)
                worst, n = max(worst, time.monotonic() - started), n + 1
            assert "queue.db" in caplog.text and "read transaction" in caplog.text
            assert worst < 2.0, f"an emit waited {worst:.1f} s"
            reader.execute("COMMIT")
            while "starts over again" not in caplog.text:
                assert time.monotonic() < deadline, "the WAL never started over once the reader was gone"
                await queue.put(event(n, pad=1000), ROUTE)
                n += 1
        assert (await queue.counts())["ready"] == n
    finally:
        reader.close()
        await queue.close()
