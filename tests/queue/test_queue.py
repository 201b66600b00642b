"""The delivery queue, every backend (memory, SQLite, Redis): leases, delays, retries, dead letters, replay,
dedupe, FIFO groups, and for SqliteQueue durability across a real process crash and group commit."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis_support import redis_conn

from steppe.event import Event
from steppe.queue import Delivery, MemoryQueue, Queue, SqliteQueue, Subscription
from steppe.queue.redis import RedisQueue

A, B = Subscription("a"), Subscription("b")
FIFO = Subscription("f", fifo=True)


def ev(name: str, group: str | None = None, data: object = None) -> Event:
    return Event(topic="t", data={"n": name} if data is None else data, trace_id=f"tr-{name}", flows=["fl"],
                 message_group_id=group, id=name, emitted_by="Emitter")


def names(deliveries: list[Delivery]) -> list[str]:
    return [d.event.id for d in deliveries]


async def wait_due(q: Queue, step: str, fifo: bool = False, timeout: float = 5.0, limit: int = 10) -> list[Delivery]:
    """Take until something is handed out (bounded by time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if got := await q.take(step, limit, fifo):
            return got
        await asyncio.sleep(0.01)
    raise AssertionError(f"nothing due for {step} after {timeout}s")


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def q(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Queue]:
    if request.param == "redis":
        async with redis_conn() as conn:
            queue: Queue = RedisQueue(conn)
            yield queue
            await queue.close()
        return
    queue = MemoryQueue() if request.param == "memory" else SqliteQueue(tmp_path / "queue.db")
    yield queue
    await queue.close()


# --- put / take / ack

async def test_put_take_ack(q: Queue) -> None:
    e = ev("e1", data={"x": [1, {"y": None}], "s": "é"})
    before = time.time()
    assert await q.put(e, [A, B]) is True
    assert await q.counts() == {"ready": 2, "leased": 0, "dead": 0}
    [d] = await q.take("a", 10, False)
    assert d.step == "a" and d.attempts == 1 and before <= d.created_at <= time.time()
    assert d.event.as_dict() == e.as_dict()
    assert await q.counts() == {"ready": 1, "leased": 1, "dead": 0}
    assert await q.take("a", 10, False) == []  # leased: not handed out twice
    await q.ack(d)
    assert await q.counts() == {"ready": 1, "leased": 0, "dead": 0}
    assert await q.take("a", 10, False) == []  # acked: gone
    [db] = await q.take("b", 10, False)
    assert db.step == "b" and db.event.as_dict() == e.as_dict() and db.id != d.id
    await q.ack(db)
    assert await q.counts() == {"ready": 0, "leased": 0, "dead": 0}


async def test_the_emitting_span_travels_with_the_event(q: Queue) -> None:
    """OpenTelemetry's parent span id (Event.parent_span) is kept by every backend, and through a retry."""
    e = ev("e-span")
    e.parent_span = "00f067aa0ba902b7"
    await q.put(e, [A])
    [d] = await q.take("a", 10, False)
    assert d.event.parent_span == "00f067aa0ba902b7"
    await q.retry(d, 0, "once more")
    [again] = await wait_due(q, "a")
    assert again.attempts == 2 and again.event.parent_span == "00f067aa0ba902b7"
    await q.ack(again)


async def test_take_respects_limit_and_oldest_first(q: Queue) -> None:
    for i in range(7):
        await q.put(ev(f"e{i}"), [A])
    assert names(await q.take("a", 2, False)) == ["e0", "e1"]
    got = await q.take("a", 3, False)
    assert names(got) == ["e2", "e3", "e4"]
    assert names(await q.take("a", 100, False)) == ["e5", "e6"]
    assert await q.take("a", 100, False) == []
    assert await q.take("nobody", 100, False) == []


async def test_take_returns_in_put_order(q: Queue) -> None:
    await asyncio.gather(*(q.put(ev(f"e{i:02}"), [A]) for i in range(20)))  # one commit for sqlite
    first = await q.take("a", 5, False)
    assert names(first) == [f"e{i:02}" for i in range(5)]
    assert [d.id for d in first] == sorted(d.id for d in first)
    assert names(await q.take("a", 100, False)) == [f"e{i:02}" for i in range(5, 20)]


async def test_delay_makes_a_delivery_due_later(q: Queue) -> None:
    start = time.time()
    await q.put(ev("e1"), [Subscription("a", delay=0.4), B])
    assert await q.take("a", 10, False) == []
    assert await q.counts() == {"ready": 2, "leased": 0, "dead": 0}  # not due is still ready, not leased
    assert names(await q.take("b", 10, False)) == ["e1"]  # the other route is not delayed
    got = await wait_due(q, "a")
    assert names(got) == ["e1"] and time.time() - start >= 0.4 - 0.01


async def test_retry_releases_the_lease_until_due(q: Queue) -> None:
    await q.put(ev("e1"), [A])
    await q.put(ev("e2"), [A])
    [d1] = await q.take("a", 1, False)
    await q.retry(d1, 0.4, "Boom: first")
    assert d1.last_error == "Boom: first"
    assert await q.counts() == {"ready": 2, "leased": 0, "dead": 0}
    t0 = time.time()
    assert names(await q.take("a", 10, False)) == ["e2"]  # e1 is not due yet; e2 is not held up by it
    [again] = await wait_due(q, "a")
    assert again.event.id == "e1" and again.attempts == 2 and again.last_error == "Boom: first"
    assert time.time() - t0 >= 0.4 - 0.05


async def test_retry_with_zero_delay_is_due_at_once(q: Queue) -> None:
    await q.put(ev("e1"), [A])
    for attempt in range(1, 5):
        [d] = await q.take("a", 1, False)
        assert d.attempts == attempt
        await q.retry(d, 0, f"fail {attempt}")


async def test_bury_moves_to_dead_letters(q: Queue) -> None:
    before = time.time()
    await q.put(ev("e1"), [A, B])
    after_put = time.time()
    await asyncio.sleep(0.05)
    [d] = await q.take("a", 1, False)
    await q.retry(d, 0, "first")
    [d] = await q.take("a", 1, False)
    await q.bury(d, "ValueError: nope", "Traceback...\n  line 1")
    assert await q.counts() == {"ready": 1, "leased": 0, "dead": 1}
    assert await q.take("a", 10, False) == []
    [letter] = await q.dead()
    assert letter.step == "a" and letter.attempts == 2
    assert letter.error == "ValueError: nope" and letter.stack == "Traceback...\n  line 1"
    assert letter.event.as_dict() == ev("e1").as_dict() | {"emittedAt": letter.event.emitted_at}
    assert before <= letter.first_at <= after_put  # when it was put, not when it failed
    assert after_put + 0.05 <= letter.failed_at <= time.time()
    as_dict = letter.as_dict()
    assert as_dict["attempts"] == 2 and as_dict["event"]["id"] == "e1" and as_dict["firstAt"] == letter.first_at


async def test_dead_filters_by_step_and_ids(q: Queue) -> None:
    for name in ("e1", "e2", "e3"):
        await q.put(ev(name), [A, B])
    for step in ("a", "b"):
        for d in await q.take(step, 10, False):
            await q.bury(d, f"err {d.event.id}")
    everything = await q.dead()
    assert sorted((d.step, d.event.id) for d in everything) == sorted(
        (s, n) for s in "ab" for n in ("e1", "e2", "e3"))
    assert len({d.id for d in everything}) == 6
    only_a = await q.dead(step="a")
    assert sorted(names(only_a)) == ["e1", "e2", "e3"] and {d.step for d in only_a} == {"a"}
    pick = [d.id for d in everything if d.event.id == "e2"]
    assert sorted((d.step, d.event.id) for d in await q.dead(ids=pick)) == [("a", "e2"), ("b", "e2")]
    a_e2 = [d.id for d in only_a if d.event.id == "e2"]
    assert [d.id for d in await q.dead(step="a", ids=pick)] == a_e2
    assert await q.dead(step="b", ids=a_e2) == []
    assert await q.dead(ids=[]) == []
    assert await q.dead(step="nobody") == []
    assert await q.dead(ids=[max(d.id for d in everything) + 1000]) == []


async def test_replay_reenqueues_with_fresh_attempts(q: Queue) -> None:
    await q.put(ev("e1"), [A])
    for _ in range(3):
        [d] = await q.take("a", 1, False)
        await q.retry(d, 0, "again")
    [d] = await q.take("a", 1, False)
    assert d.attempts == 4
    await q.bury(d, "exhausted")
    [letter] = await q.dead()
    assert letter.attempts == 4
    assert await q.replay([letter.id]) == 1
    assert await q.dead() == [] and await q.counts() == {"ready": 1, "leased": 0, "dead": 0}
    [again] = await q.take("a", 10, False)
    assert again.attempts == 1 and again.event.as_dict() == letter.event.as_dict() and again.step == "a"
    await q.bury(again, "once more")
    [letter2] = await q.dead()
    assert letter2.attempts == 1


async def test_replay_of_several_and_of_unknown_ids(q: Queue) -> None:
    for name in ("e1", "e2", "e3"):
        await q.put(ev(name), [A])
    for d in await q.take("a", 10, False):
        await q.bury(d, "x")
    letters = await q.dead()
    assert names(letters) == ["e1", "e2", "e3"]
    assert await q.replay([]) == 0
    assert await q.replay([letters[0].id, letters[2].id]) == 2
    assert names(await q.dead()) == ["e2"]
    assert names(await q.take("a", 10, False)) == ["e1", "e3"]


async def test_replay_of_unknown_ids_counts_zero(q: Queue) -> None:
    # Queue.replay "returns how many": ids that are not (or no longer) dead letters count 0 rather than
    # failing the whole call, as drop() does. SqliteQueue does; MemoryQueue raises KeyError (memory.py:108).
    for name in ("e1", "e2"):
        await q.put(ev(name), [A])
    for d in await q.take("a", 10, False):
        await q.bury(d, "x")
    first, second = await q.dead()
    assert await q.replay([first.id]) == 1
    assert await q.replay([first.id]) == 0  # already replayed
    assert await q.replay([10_000, second.id]) == 1
    assert await q.dead() == []
    assert names(await q.take("a", 10, False)) == ["e1", "e2"]


async def test_replay_keeps_the_fifo_group(q: Queue) -> None:
    await q.put(ev("g1", group="g"), [FIFO])
    await q.put(ev("g2", group="g"), [FIFO])
    [head] = await q.take("f", 10, True)
    assert head.event.id == "g1"
    await q.bury(head, "bad")
    [letter] = await q.dead()
    [g2] = await q.take("f", 10, True)  # g2 is the head now, and is running
    assert g2.event.id == "g2"
    assert await q.replay([letter.id]) == 1
    assert await q.take("f", 10, True) == []  # the replayed g1 is in group "g" again: it waits for g2
    await q.ack(g2)
    [again] = await q.take("f", 10, True)
    assert again.event.id == "g1" and again.attempts == 1
    assert await q.take("f", 10, True) == []


async def test_replayed_fifo_delivery_waits_behind_its_group(q: Queue) -> None:
    await q.put(ev("g1", group="g"), [FIFO])
    await q.put(ev("g2", group="g"), [FIFO])
    await q.put(ev("g3", group="g"), [FIFO])
    [head] = await q.take("f", 10, True)
    await q.bury(head, "bad")
    [letter] = await q.dead()
    assert await q.replay([letter.id]) == 1
    # g1 re-enters its group at the back: g2, g3, g1, one at a time
    order = []
    for _ in range(3):
        got = await q.take("f", 10, True)
        assert len(got) == 1, names(got)
        order.append(got[0].event.id)
        await q.ack(got[0])
    assert order == ["g2", "g3", "g1"]
    assert await q.take("f", 10, True) == []


async def test_drop(q: Queue) -> None:
    for name in ("e1", "e2"):
        await q.put(ev(name), [A])
    for d in await q.take("a", 10, False):
        await q.bury(d, "x")
    first, second = await q.dead()
    assert await q.drop([]) == 0
    assert await q.drop([first.id]) == 1
    assert [d.id for d in await q.dead()] == [second.id]
    assert await q.drop([first.id, 99_999]) == 0
    assert await q.drop([second.id]) == 1
    assert await q.counts() == {"ready": 0, "leased": 0, "dead": 0}
    assert await q.take("a", 10, False) == []  # dropping does not bring anything back


# --- dedupe

async def test_dedupe_window(q: Queue) -> None:
    assert await q.put(ev("same"), [A, B], dedupe_window=0.4) is True
    assert await q.put(ev("same"), [A, B], dedupe_window=0.4) is False
    assert await q.counts() == {"ready": 2, "leased": 0, "dead": 0}  # the ignored one made no deliveries
    assert await q.put(ev("other"), [A], dedupe_window=0.4) is True
    await asyncio.sleep(0.5)
    assert await q.put(ev("same"), [A, B], dedupe_window=0.4) is True  # the window has passed
    assert await q.put(ev("same"), [A, B], dedupe_window=0.4) is False  # and a new one started
    assert await q.counts() == {"ready": 5, "leased": 0, "dead": 0}


async def test_dedupe_only_when_asked(q: Queue) -> None:
    assert await q.put(ev("same"), [A]) is True
    assert await q.put(ev("same"), [A]) is True
    assert await q.put(ev("same"), [A], dedupe_window=60) is True  # the undeduped puts left no key
    assert await q.put(ev("same"), [A], dedupe_window=60) is False
    assert await q.put(ev("same"), [A]) is True
    assert await q.counts() == {"ready": 4, "leased": 0, "dead": 0}


async def test_concurrent_duplicates_accept_exactly_one(q: Queue) -> None:
    results = await asyncio.gather(*(q.put(ev("dup"), [A], dedupe_window=60) for _ in range(10)))
    assert sorted(results) == [False] * 9 + [True]
    assert len(await q.take("a", 100, False)) == 1


# --- FIFO

async def test_fifo_group_one_at_a_time_in_put_order(q: Queue) -> None:
    for i in range(1, 5):
        await q.put(ev(f"g{i}", group="g"), [FIFO])
    [d1] = await q.take("f", 10, True)
    assert d1.event.id == "g1"
    assert await q.take("f", 10, True) == []  # the head is running: the group waits
    await q.ack(d1)
    [d2] = await q.take("f", 10, True)
    assert d2.event.id == "g2"
    await q.retry(d2, 0.3, "later")
    assert await q.take("f", 10, True) == []  # a retried head blocks its group until it is due
    [d2] = await wait_due(q, "f", fifo=True)
    assert d2.event.id == "g2" and d2.attempts == 2
    assert await q.take("f", 10, True) == []
    await q.bury(d2, "gave up")  # a buried head lets the group go on
    [d3] = await q.take("f", 10, True)
    assert d3.event.id == "g3"
    await q.ack(d3)
    [d4] = await q.take("f", 10, True)
    assert d4.event.id == "g4"
    await q.ack(d4)
    assert await q.counts() == {"ready": 0, "leased": 0, "dead": 1}


async def test_fifo_groups_proceed_in_parallel(q: Queue) -> None:
    for i in range(1, 4):
        for g in ("x", "y", "z"):
            await q.put(ev(f"{g}{i}", group=g), [FIFO])
    first = await q.take("f", 10, True)
    assert names(first) == ["x1", "y1", "z1"]
    await q.ack(first[1])  # y moves on, x and z stay blocked
    assert names(await q.take("f", 10, True)) == ["y2"]
    assert await q.take("f", 10, True) == []


async def test_fifo_limit_counts_heads_only(q: Queue) -> None:
    for i in range(1, 4):
        for g in ("x", "y", "z"):
            await q.put(ev(f"{g}{i}", group=g), [FIFO])
    assert names(await q.take("f", 2, True)) == ["x1", "y1"]
    assert names(await q.take("f", 2, True)) == ["z1"]


async def test_fifo_events_without_group_are_not_blocked(q: Queue) -> None:
    await q.put(ev("g1", group="g"), [FIFO])
    await q.put(ev("free1"), [FIFO])
    await q.put(ev("g2", group="g"), [FIFO])
    await q.put(ev("free2"), [FIFO])
    assert names(await q.take("f", 10, True)) == ["g1", "free1", "free2"]


async def test_group_ignored_on_a_non_fifo_route(q: Queue) -> None:
    for i in range(1, 4):
        await q.put(ev(f"g{i}", group="g"), [A, FIFO])
    assert names(await q.take("a", 10, False)) == ["g1", "g2", "g3"]  # standard queue: all at once
    assert names(await q.take("f", 10, True)) == ["g1"]  # the fifo route of the same events: one at a time


async def test_fifo_groups_are_per_step(q: Queue) -> None:
    other = Subscription("f2", fifo=True)
    await q.put(ev("g1", group="g"), [FIFO, other])
    await q.put(ev("g2", group="g"), [FIFO, other])
    [f] = await q.take("f", 10, True)
    [f2] = await q.take("f2", 10, True)  # same group name, other step: not blocked by f's head
    assert f.event.id == f2.event.id == "g1"


async def test_counts(q: Queue) -> None:
    assert await q.counts() == {"ready": 0, "leased": 0, "dead": 0}
    for i in range(5):
        await q.put(ev(f"e{i}"), [A, Subscription("d", delay=60)])
    assert await q.counts() == {"ready": 10, "leased": 0, "dead": 0}
    taken = await q.take("a", 3, False)
    assert await q.counts() == {"ready": 7, "leased": 3, "dead": 0}
    await q.ack(taken[0])
    await q.retry(taken[1], 60, "x")
    await q.bury(taken[2], "y")
    assert await q.counts() == {"ready": 8, "leased": 0, "dead": 1}
    assert await q.recover() == 0  # nothing leased
    assert await q.counts() == {"ready": 8, "leased": 0, "dead": 1}


# --- SqliteQueue only: durability

CRASHER = textwrap.dedent("""
    import asyncio, os, signal, sys
    from steppe.event import Event
    from steppe.queue import SqliteQueue, Subscription

    async def main() -> None:
        q = SqliteQueue(sys.argv[1])
        routes = [Subscription("a"), Subscription("b")]
        await asyncio.gather(*(q.put(Event("t", {"i": i}, "tr", id=f"e{i:03}"), routes) for i in range(50)))
        taken = await q.take("a", 10, False)          # e000..e009 leased
        for d in taken[:5]:
            await q.ack(d)                             # e000..e004 done
        for d in taken[5:7]:
            await q.retry(d, 0, "retried")             # e005, e006 due again
        await q.bury(taken[7], "buried", "stack")      # e007 dead
        print("ready", flush=True)                     # e008, e009 still leased
        os.kill(os.getpid(), signal.SIGKILL)           # a host crash: no close, no cleanup

    asyncio.run(main())
""")


async def test_sqlite_survives_a_process_crash(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    script = tmp_path / "crasher.py"
    script.write_text(CRASHER)
    proc = subprocess.run([sys.executable, str(script), str(db)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -9 and proc.stdout.strip() == "ready", proc.stderr
    q = SqliteQueue(db)
    try:
        assert await q.counts() == {"ready": 92, "leased": 2, "dead": 1}
        assert await q.recover() == 2
        assert await q.counts() == {"ready": 94, "leased": 0, "dead": 1}
        a = await q.take("a", 1000, False)
        b = await q.take("b", 1000, False)
        assert names(a) == [f"e{i:03}" for i in range(5, 50) if i != 7]
        assert names(b) == [f"e{i:03}" for i in range(50)]
        attempts = {d.event.id: d.attempts for d in a}
        assert attempts["e005"] == attempts["e006"] == 2  # retried before the crash
        assert attempts["e008"] == attempts["e009"] == 2  # leased when it crashed
        assert {attempts[f"e{i:03}"] for i in range(10, 50)} == {1}
        assert attempts["e005"] and a[0].last_error == "retried"
        [letter] = await q.dead()
        assert (letter.event.id, letter.step, letter.attempts, letter.error, letter.stack) == (
            "e007", "a", 1, "buried", "stack")
    finally:
        await q.close()


async def test_sqlite_reopen_after_close_keeps_leases_until_recover(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    q = SqliteQueue(db)
    for i in range(4):
        await q.put(ev(f"e{i}"), [A])
    d0, d1, d2 = await q.take("a", 3, False)
    await q.ack(d0)
    await q.close()  # d1, d2 still leased
    q = SqliteQueue(db)
    try:
        assert names(await q.take("a", 10, False)) == ["e3"]  # leases outlive the process until recover
        assert await q.recover() == 3  # d1, d2, and e3 that was just taken
        got = await q.take("a", 10, False)
        assert names(got) == ["e1", "e2", "e3"] and [d.attempts for d in got] == [2, 2, 2]
        assert await q.recover() == 3
    finally:
        await q.close()


async def test_sqlite_close_flushes_writes_of_the_current_turn(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    q = SqliteQueue(db)
    await q.put(ev("e1"), [A])
    [d] = await q.take("a", 1, False)
    ack = asyncio.ensure_future(q.ack(d))
    put = asyncio.ensure_future(q.put(ev("e2"), [A]))
    await asyncio.sleep(0)  # both submitted, the flush not run yet
    await q.close()
    await asyncio.gather(ack, put)
    assert put.result() is True
    q = SqliteQueue(db)
    try:
        assert await q.counts() == {"ready": 1, "leased": 0, "dead": 0}
        assert names(await q.take("a", 10, False)) == ["e2"]
    finally:
        await q.close()


async def test_sqlite_take_shares_its_turns_commit(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    q = SqliteQueue(db)
    commits: list[str] = []
    try:
        for i in range(3):
            await q.put(ev(f"e{i}"), [A])
        q._db.set_trace_callback(lambda sql: commits.append(sql) if sql.strip().upper() == "COMMIT" else None)
        [first] = await q.take("a", 1, False)
        await q.ack(first)  # in the take's loop turn; an ack is not waited for
        assert commits == []
        await asyncio.sleep(0)
        assert len(commits) == 1  # the lease and the ack: one transaction, at the end of the turn
        [second] = await q.take("a", 1, False)
        await asyncio.sleep(0)
        assert len(commits) == 2  # a lease alone is committed at the end of its turn
        with sqlite3.connect(db) as reader:  # what a restart would find
            assert reader.execute("SELECT id, leased, attempts FROM deliveries ORDER BY id").fetchall() == [
                (second.id, 1, 1), (second.id + 1, 0, 0)]
    finally:
        await q.close()


async def test_sqlite_takes_what_it_put_from_memory_once_the_step_is_drained(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    q = SqliteQueue(db)
    statements: list[str] = []
    try:
        await q.put(ev("old"), [A])
        assert names(await q.take("a", 10, False)) == ["old"]  # by query: drains the step's rows
        await asyncio.gather(*(q.put(ev(f"e{i}"), [A]) for i in range(3)))
        q._db.set_trace_callback(lambda sql: statements.append(sql.split()[0].upper()))
        first = await q.take("a", 2, False)
        assert (names(first), [d.attempts for d in first]) == (["e0", "e1"], [1, 1])
        assert statements == []  # no query: the step's unleased rows are all in hand
        await q.retry(first[0], 0, "boom")  # a row this process no longer holds: by query again
        await asyncio.sleep(0)
        statements.clear()
        assert names(await q.take("a", 10, False)) == ["e0", "e2"]
        assert "UPDATE" in statements
        await asyncio.sleep(0)
        with sqlite3.connect(db) as reader:  # every lease on disk after its turn
            assert reader.execute("SELECT leased, attempts FROM deliveries ORDER BY id").fetchall() == [
                (1, 1), (1, 2), (1, 1), (1, 1)]  # old, e0 (run twice), e1, e2
    finally:
        await q.close()


async def test_sqlite_group_commit(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    q = SqliteQueue(db)
    commits: list[str] = []
    q._db.set_trace_callback(lambda sql: commits.append(sql) if sql.strip().upper() == "COMMIT" else None)
    reader = sqlite3.connect(str(db))
    seen_at_resume: list[int] = []

    async def emit(i: int) -> bool:
        ok = await q.put(ev(f"e{i:03}"), [A, B], dedupe_window=60)
        seen_at_resume.append(reader.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0])
        return ok

    try:
        results = await asyncio.gather(*(emit(i) for i in range(200)), emit(0))  # e000 twice
        assert sorted(results) == [False] + [True] * 200
        assert len(commits) == 1  # 201 puts, one transaction
        # every caller resumed only after the commit, and the commit held every put of the turn
        assert seen_at_resume == [400] * 201

        # acks, retries and burials of one turn share a commit too
        taken = await q.take("a", 30, False)
        await asyncio.sleep(0)  # the take's turn commits its leases
        commits.clear()
        await asyncio.gather(*(q.ack(d) for d in taken[:10]), *(q.retry(d, 0, "r") for d in taken[10:20]),
                             *(q.bury(d, "b") for d in taken[20:]), q.put(ev("late"), [A]))
        assert len(commits) == 1
        assert await q.counts() == {"ready": 381, "leased": 0, "dead": 10}
    finally:
        reader.close()
        await q.close()
    q = SqliteQueue(db)  # durable after reopen
    try:
        assert await q.counts() == {"ready": 381, "leased": 0, "dead": 10}
        assert len(await q.take("b", 1000, False)) == 200
        assert len(await q.take("a", 1000, False)) == 181
        assert await q.put(ev("e005"), [A], dedupe_window=60) is False  # dedupe keys are durable too
    finally:
        await q.close()


async def test_sqlite_commits_once_per_turn_not_per_put(tmp_path: Path) -> None:
    q = SqliteQueue(tmp_path / "queue.db")
    commits = 0

    def count(sql: str) -> None:
        nonlocal commits
        commits += sql.strip().upper() == "COMMIT"

    q._db.set_trace_callback(count)
    try:
        for i in range(5):  # sequential puts: one commit each, each durable before the next starts
            await q.put(ev(f"s{i}"), [A])
        assert commits == 5
        assert os.path.exists(f"{tmp_path / 'queue.db'}-wal")
    finally:
        await q.close()


# --- RedisQueue only: several hosts on one Redis (each RedisQueue is one host: its own consumer name)

async def test_redis_concurrency_cap_and_fifo_groups_hold_across_hosts() -> None:
    async with redis_conn() as conn:
        one, two = RedisQueue(conn, upkeep=False), RedisQueue(conn, upkeep=False)
        for q in (one, two):
            q.set_limits({"a": 2})
        for i in range(5):
            await one.put(ev(f"e{i}"), [A])
        assert names(await one.take("a", 10, False)) == ["e0", "e1"]
        assert await two.take("a", 10, False) == []  # the cap is global: two are running on `one`
        assert await one.take("a", 10, False) == []
        await one.put(ev("g1", group="g"), [FIFO])
        await one.put(ev("g2", group="g"), [FIFO])
        [head] = await two.take("f", 10, True)
        assert head.event.id == "g1" and await one.take("f", 10, True) == []  # FIFO across hosts
        await two.ack(head)
        assert names(await one.take("f", 10, True)) == ["g2"]


async def test_redis_leases_of_a_dead_host_are_reclaimed_and_a_live_one_keeps_its_own() -> None:
    async with redis_conn() as conn:
        dead, live, other = RedisQueue(conn, lease=0.3), RedisQueue(conn, lease=0.3), RedisQueue(conn, lease=0.3)
        await dead.put(ev("lost"), [A])
        await dead.put(ev("held"), [A])
        [lost] = await dead.take("a", 1, False)
        dead._leased.clear()  # killed: it neither refreshes nor (in close) puts back what it held
        await dead.close()
        [held] = await live.take("a", 1, False)
        assert (lost.event.id, held.event.id) == ("lost", "held")
        await asyncio.sleep(1.0)  # three leases long: `live` refreshes its own, nobody refreshes `lost`
        [again] = await wait_due(other, "a")
        assert again.event.id == "lost" and again.attempts == 2  # the lost run counts as an attempt
        assert await other.take("a", 10, False) == []  # `held` is still leased by `live`
        await live.ack(held)
        await other.ack(again)
        assert (await other.counts())["leased"] == 0
        for q in (live, other):
            await q.close()


async def test_redis_close_puts_back_what_the_host_still_held() -> None:
    async with redis_conn() as conn:
        one, two = RedisQueue(conn), RedisQueue(conn)
        await one.put(ev("e1"), [A])
        [d] = await one.take("a", 1, False)
        await one.close()
        [again] = await two.take("a", 1, False)  # at once, not after the lease
        assert again.event.id == "e1" and again.attempts == 2
        await two.ack(again)
        await two.close()


async def test_redis_forgets_consumer_names_of_hosts_long_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    import steppe.queue.redis as redis_queue

    monkeypatch.setattr(redis_queue, "FORGET_CONSUMERS_MS", 0)
    async with redis_conn() as conn:
        gone, here = RedisQueue(conn, lease=0.01, upkeep=False), RedisQueue(conn, lease=0.01, upkeep=False)
        await gone.put(ev("e1"), [A])
        [d] = await gone.take("a", 1, False)
        await gone.ack(d)
        await asyncio.sleep(0.3)
        await here.recover()
        names = [c["name"] for c in await conn.client.xinfo_consumers(here.base("a") + "s", "steppe")]
        assert gone.consumer.encode() not in names and gone.consumer not in names


async def test_redis_wakes_the_other_hosts_when_deliveries_are_put_or_replayed() -> None:
    async with redis_conn() as conn:
        one, two = RedisQueue(conn, upkeep=False), RedisQueue(conn, upkeep=False)
        woken = asyncio.Event()
        await two.watch(woken.set)
        await one.put(ev("e1"), [A])
        await asyncio.wait_for(woken.wait(), 2)
        [d] = await two.take("a", 1, False)
        await two.bury(d, "x")
        woken.clear()
        await asyncio.sleep(0.06)  # past the 50 ms in which wake-ups are coalesced
        [letter] = await one.dead()
        assert await one.replay([letter.id]) == 1
        await asyncio.wait_for(woken.wait(), 2)
        for q in (one, two):
            await q.close()


# --- the backlog probe and releasing unrecorded outcomes (health and storage-fault recovery)

async def test_oldest_due_and_release(q: Queue) -> None:
    assert await q.oldest_due(["a", "b"]) == 0.0
    await q.put(ev("later"), [Subscription("b", delay=3600)])  # not due: never counts as waiting
    await q.put(ev("e1"), [A])
    await asyncio.sleep(0.15)
    assert 0.1 <= await q.oldest_due(["a", "b"]) < 2.0
    assert await q.oldest_due(["b"]) == 0.0
    [d] = await q.take("a", 10, False)
    assert await q.oldest_due(["a"]) == 0.0  # leased: no longer waiting
    assert await q.release([d.id]) == 1
    assert await q.counts() == {"ready": 2, "leased": 0, "dead": 0}
    [again] = await wait_due(q, "a")
    assert again.event.id == "e1" and again.attempts == 2  # the unrecorded run still counts
    await q.ack(again)
    assert await q.oldest_due(["a"]) == 0.0
