"""Random interleavings of emit, take, ack, fail, bury, crash/restart and replay against a model, on both
queue backends: no delivery is ever lost, invented, or leased twice, and FIFO groups hand out only their
head, oldest first.

A logical delivery is (event id, step): every event id is unique, so each put makes one logical delivery
per route; replay makes a new physical delivery of the same logical one."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from steppe.event import Event
from steppe.queue import Delivery, MemoryQueue, Queue, SqliteQueue, Subscription

STEPS = {"a": True, "b": False, "c": True}  # step -> fifo
GROUPS = [None, "g1", "g2"]
Key = tuple[str, str]  # (event id, step)


@dataclass
class Logical:
    seq: int  # order of its current physical delivery: later puts and replays get larger ones
    group: str | None  # the FIFO group it belongs to on its step (None on a standard step)
    status: str  # "ready" | "leased" | "acked" | "dead"
    attempts: int = 0
    held: Delivery | None = None  # the leased Delivery object, while leased


class QueueMachine(RuleBasedStateMachine):
    durable = False

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.dir = Path(tempfile.mkdtemp(prefix="steppe-qprop-"))
        self.queue: Queue = self.open()
        self.model: dict[Key, Logical] = {}
        self.seq = itertools.count()
        self.events = itertools.count()
        self.crashes = 0

    def open(self) -> Queue:
        return MemoryQueue()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        try:
            self.drain_and_check()
        finally:
            self.run(self.queue.close())
            self.loop.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    # --- helpers
    def with_status(self, status: str) -> list[Key]:
        return sorted((k for k, v in self.model.items() if v.status == status), key=lambda k: self.model[k].seq)

    def expected_take(self, step: str, limit: int) -> list[Key]:
        """What `take` must hand out: the oldest due ready deliveries of the step; on a FIFO step a grouped
        one only when no older delivery of its group is ready or leased."""
        pending = sorted(((k, v) for k, v in self.model.items() if k[1] == step and v.status in ("ready", "leased")),
                         key=lambda kv: kv[1].seq)
        heads_seen: set[str] = set()
        eligible = []
        for k, v in pending:
            blocked = v.group is not None and v.group in heads_seen
            if v.group is not None:
                heads_seen.add(v.group)
            if v.status == "ready" and not blocked:
                eligible.append(k)
        return eligible[:limit]

    # --- rules
    @rule(steps=st.lists(st.sampled_from(sorted(STEPS)), min_size=1, max_size=3, unique=True),
          group=st.sampled_from(GROUPS))
    def emit(self, steps: list[str], group: str | None) -> None:
        eid = f"e{next(self.events)}"
        routes = [Subscription(s, fifo=STEPS[s]) for s in steps]
        event = Event(topic="t", data={"id": eid}, trace_id="tr", message_group_id=group, id=eid)
        assert self.run(self.queue.put(event, routes)) is True
        for s in steps:
            self.model[(eid, s)] = Logical(next(self.seq), group if STEPS[s] else None, "ready")

    @rule(step=st.sampled_from(sorted(STEPS)), limit=st.integers(1, 4))
    def take(self, step: str, limit: int) -> None:
        expected = self.expected_take(step, limit)
        got = self.run(self.queue.take(step, limit, STEPS[step]))
        keys = [(d.event.id, d.step) for d in got]
        assert keys == expected, f"take({step}, {limit}): got {keys}, the model expects {expected}"
        for d, k in zip(got, keys, strict=True):
            logical = self.model[k]
            logical.attempts += 1
            assert d.attempts == logical.attempts, (k, d.attempts, logical.attempts)
            assert d.event.data == {"id": k[0]}
            logical.status, logical.held = "leased", d

    def pick_leased(self, index: int) -> tuple[Key, Logical]:
        leased = self.with_status("leased")
        key = leased[index % len(leased)]
        return key, self.model[key]

    @precondition(lambda self: self.with_status("leased"))
    @rule(index=st.integers(0, 50))
    def ack(self, index: int) -> None:
        key, logical = self.pick_leased(index)
        self.run(self.queue.ack(logical.held))
        logical.status, logical.held = "acked", None

    @precondition(lambda self: self.with_status("leased"))
    @rule(index=st.integers(0, 50))
    def fail(self, index: int) -> None:
        key, logical = self.pick_leased(index)
        self.run(self.queue.retry(logical.held, 0, f"failed {key}"))
        logical.status, logical.held = "ready", None

    @precondition(lambda self: self.with_status("leased"))
    @rule(index=st.integers(0, 50))
    def bury(self, index: int) -> None:
        key, logical = self.pick_leased(index)
        self.run(self.queue.bury(logical.held, f"buried {key}", "stack"))
        logical.status, logical.held = "dead", None

    @precondition(lambda self: self.with_status("dead"))
    @rule(index=st.integers(0, 50))
    def replay_one(self, index: int) -> None:
        letters = self.run(self.queue.dead())
        letter = letters[index % len(letters)]
        key = (letter.event.id, letter.step)
        assert self.run(self.queue.replay([letter.id])) == 1
        logical = self.model[key]
        logical.status, logical.attempts, logical.seq = "ready", 0, next(self.seq)

    @precondition(lambda self: self.with_status("dead"))
    @rule(step=st.sampled_from([None, *sorted(STEPS)]))
    def replay_by_step(self, step: str | None) -> None:
        letters = self.run(self.queue.dead(step=step))  # as the admin API does: select, then replay
        assert self.run(self.queue.replay([d.id for d in letters])) == len(letters)
        for letter in letters:  # re-enqueued in dead-letter order (the order they were buried in)
            logical = self.model[(letter.event.id, letter.step)]
            logical.status, logical.attempts, logical.seq = "ready", 0, next(self.seq)

    # --- invariants
    @invariant()
    def counts_match(self) -> None:
        by_status = {s: len(self.with_status(s)) for s in ("ready", "leased", "dead")}
        assert self.run(self.queue.counts()) == by_status

    @invariant()
    def dead_letters_match(self) -> None:
        letters = self.run(self.queue.dead())
        keys = [(d.event.id, d.step) for d in letters]
        assert len(keys) == len(set(keys)), f"a delivery is dead twice: {keys}"
        assert set(keys) == set(self.with_status("dead"))
        assert len({d.id for d in letters}) == len(letters)
        for d in letters:
            assert d.attempts == self.model[(d.event.id, d.step)].attempts
            assert d.error == f"buried {(d.event.id, d.step)}"

    def drain_and_check(self) -> None:
        """At the end: every delivery the model says is pending comes out exactly once, and nothing else."""
        for key in self.with_status("leased"):
            self.ack_key(key)
        for step in STEPS:
            for _ in range(1000):
                expected = self.expected_take(step, 1000)
                got = self.run(self.queue.take(step, 1000, STEPS[step]))
                assert [(d.event.id, d.step) for d in got] == expected
                if not got:
                    break
                for d in got:
                    self.model[(d.event.id, d.step)].status, self.model[(d.event.id, d.step)].held = "leased", d
                    self.model[(d.event.id, d.step)].attempts += 1
                    self.ack_key((d.event.id, d.step))
        assert self.with_status("ready") == [] and self.with_status("leased") == []
        assert self.run(self.queue.counts()) == {"ready": 0, "leased": 0, "dead": len(self.with_status("dead"))}

    def ack_key(self, key: Key) -> None:
        logical = self.model[key]
        self.run(self.queue.ack(logical.held))
        logical.status, logical.held = "acked", None


class SqliteQueueMachine(QueueMachine):
    durable = True

    def open(self) -> Queue:
        return SqliteQueue(self.dir / "queue.db")

    @initialize()
    def fresh(self) -> None:
        assert self.run(self.queue.recover()) == 0

    @rule()
    def crash(self) -> None:
        """A host crash and restart: every write was awaited (so it is committed); the connection is dropped
        without close(), a new queue opens the same file and recovers the leases."""
        old = self.queue
        old._db.close()  # type: ignore[attr-defined]  # no flush, no cleanup: just the file left behind
        del old
        self.queue = self.open()
        leased = self.with_status("leased")
        assert self.run(self.queue.recover()) == len(leased)
        for key in leased:
            self.model[key].status, self.model[key].held = "ready", None
        self.crashes += 1


PROFILE = settings(max_examples=100, stateful_step_count=50, deadline=None, database=None,
                   suppress_health_check=[HealthCheck.too_slow])

TestMemoryQueueProperties = QueueMachine.TestCase
TestMemoryQueueProperties.settings = PROFILE
TestSqliteQueueProperties = SqliteQueueMachine.TestCase
TestSqliteQueueProperties.settings = PROFILE


WAITING = 10**9  # seq offset of a Redis FIFO delivery parked behind its group's head (not in the stream yet)


class RedisQueueMachine(QueueMachine):
    """The Redis queue against the same model, with its one documented difference in order: a delivery
    enters its step's stream when it becomes due (a retry goes to the back), and a FIFO group keeps only
    its head in the stream, the others parked in put order until the head is done. Leases are taken
    with lease=0 so that `crash` can reclaim the dead consumer's deliveries at once."""

    durable = True

    def open(self) -> Queue:
        from redis_support import fresh_prefix, need_redis

        from steppe.queue.redis import RedisQueue
        from steppe.redis_conn import RedisConn

        if not hasattr(self, "conn"):
            self.conn = RedisConn(need_redis(), fresh_prefix())
        return RedisQueue(self.conn, lease=0.0, upkeep=False)

    def teardown(self) -> None:
        from redis_support import delete_prefix

        try:
            self.drain_and_check()
        finally:
            self.run(self.queue.close())
            self.run(delete_prefix(self.conn))
            self.run(self.conn.close())
            self.loop.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    def owned(self, step: str, group: str | None) -> bool:
        return group is not None and any(k[1] == step and v.group == group and v.status in ("ready", "leased")
                                         for k, v in self.model.items())

    def promote(self, key: Key) -> None:
        """The head of `key`'s group is done: the next parked one enters the stream now."""
        group = self.model[key].group
        parked = [k for k, v in self.model.items() if k[1] == key[1] and v.group == group and v.status == "ready"]
        if group is not None and parked:
            self.model[min(parked, key=lambda k: self.model[k].seq)].seq = next(self.seq)

    @rule(steps=st.lists(st.sampled_from(sorted(STEPS)), min_size=1, max_size=3, unique=True),
          group=st.sampled_from(GROUPS))
    def emit(self, steps: list[str], group: str | None) -> None:
        parked = {s for s in steps if STEPS[s] and self.owned(s, group)}
        super().emit(steps, group)
        eid = f"e{next(self.events) - 1}"
        for s in parked:
            self.model[(eid, s)].seq += WAITING

    @precondition(lambda self: self.with_status("leased"))
    @rule(index=st.integers(0, 50))
    def ack(self, index: int) -> None:
        key, _ = self.pick_leased(index)
        super().ack(index)
        self.promote(key)

    @precondition(lambda self: self.with_status("leased"))
    @rule(index=st.integers(0, 50))
    def fail(self, index: int) -> None:
        key, _ = self.pick_leased(index)
        super().fail(index)
        self.model[key].seq = next(self.seq)

    @precondition(lambda self: self.with_status("leased"))
    @rule(index=st.integers(0, 50))
    def bury(self, index: int) -> None:
        key, _ = self.pick_leased(index)
        super().bury(index)
        self.promote(key)

    def replayed(self, letters: list[Any]) -> None:
        for letter in letters:
            key = (letter.event.id, letter.step)
            logical = self.model[key]
            logical.status = "dead"  # as it was when its group was looked at
            parked = self.owned(letter.step, logical.group)
            logical.status, logical.attempts, logical.seq = "ready", 0, next(self.seq) + (WAITING if parked else 0)

    @precondition(lambda self: self.with_status("dead"))
    @rule(index=st.integers(0, 50))
    def replay_one(self, index: int) -> None:
        letters = self.run(self.queue.dead())
        letter = letters[index % len(letters)]
        assert self.run(self.queue.replay([letter.id])) == 1
        self.replayed([letter])

    @precondition(lambda self: self.with_status("dead"))
    @rule(step=st.sampled_from([None, *sorted(STEPS)]))
    def replay_by_step(self, step: str | None) -> None:
        letters = self.run(self.queue.dead(step=step))
        assert self.run(self.queue.replay([d.id for d in letters])) == len(letters)
        self.replayed(letters)

    def ack_key(self, key: Key) -> None:
        super().ack_key(key)
        self.promote(key)

    @initialize()
    def fresh(self) -> None:
        assert self.run(self.queue.recover()) == 0

    @rule()
    def crash(self) -> None:
        """A host killed: its leases stay pending under its consumer name; another queue (another consumer)
        reclaims them once their lease (0 here) is over, and they come back at the end of their streams."""
        self.queue = self.open()
        leased = self.with_status("leased")
        assert self.run(self.queue.recover()) == len(leased)
        for key in leased:
            self.model[key].status, self.model[key].held = "ready", None
            self.model[key].seq = next(self.seq)
        self.crashes += 1


TestRedisQueueProperties = RedisQueueMachine.TestCase
TestRedisQueueProperties.settings = settings(max_examples=40, stateful_step_count=50, deadline=None, database=None,
                                             suppress_health_check=[HealthCheck.too_slow])
