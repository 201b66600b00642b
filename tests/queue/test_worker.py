"""DeliveryWorker with the with_retries middleware, on both queue backends, with Python handlers (no runners):
concurrency caps measured inside the handlers, retries and their backoff from recorded timestamps, dead
letters, Reject, graceful stop; and the backoff function itself."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steppe.event import Event
from steppe.queue import (
    Delivery,
    DeliveryWorker,
    MemoryQueue,
    Queue,
    Reject,
    SqliteQueue,
    StepPolicy,
    Subscription,
    backoff,
    with_retries,
)
from steppe.rpc import RpcError

Inner = Callable[[Delivery, StepPolicy], Awaitable[None]]


@pytest.fixture(params=["memory", "sqlite"])
async def q(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Queue]:
    queue: Queue = MemoryQueue() if request.param == "memory" else SqliteQueue(tmp_path / "queue.db")
    yield queue
    await queue.close()


class Harness:
    def __init__(self, q: Queue, inner: Inner, policies: list[StepPolicy], *, base: float = 0.05, cap: float = 1.0,
                 runner_concurrency: int = 200) -> None:
        self.q = q
        self.dead: list[tuple[Delivery, str]] = []
        self.worker = DeliveryWorker(q, runner_concurrency=runner_concurrency, poll=0.05)
        self.worker.handle = with_retries(inner, q, base=base, cap=cap, wake=self.worker.wake,
                                          on_dead=lambda d, error: self.dead.append((d, error)))
        self.worker.set_policies({p.step: p for p in policies})

    async def __aenter__(self) -> Harness:
        self.worker.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.worker.stop(0)

    async def emit(self, n: int, steps: list[str], group: str | None = None, prefix: str = "e",
                   fifo: bool = False) -> None:
        routes = [Subscription(s, fifo=fifo) for s in steps]
        await asyncio.gather(*(self.q.put(Event("t", {"i": i}, "tr", message_group_id=group, id=f"{prefix}{i}"),
                                          routes) for i in range(n)))
        self.worker.wake()

    async def until(self, what: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not await what():
            if time.monotonic() > deadline:
                raise AssertionError(f"not reached after {timeout}s; queue {await self.q.counts()}")
            await asyncio.sleep(0.01)

    async def drained(self) -> bool:
        c = await self.q.counts()
        return c["ready"] == 0 and c["leased"] == 0 and self.worker.busy() == 0


class Gauge:
    """Concurrent handler runs, measured from inside the handlers."""

    def __init__(self) -> None:
        self.now: Counter[str] = Counter()
        self.max: Counter[str] = Counter()
        self.done: Counter[str] = Counter()

    def enter(self, *keys: str) -> None:
        for k in keys:
            self.now[k] += 1
            self.max[k] = max(self.max[k], self.now[k])

    def leave(self, *keys: str) -> None:
        for k in keys:
            self.now[k] -= 1
            self.done[k] += 1


async def test_per_step_concurrency_cap(q: Queue) -> None:
    gauge = Gauge()
    rng = random.Random(1)

    async def inner(d: Delivery, p: StepPolicy) -> None:
        gauge.enter(d.step)
        try:
            await asyncio.sleep(rng.uniform(0.002, 0.03))
        finally:
            gauge.leave(d.step)

    policies = [StepPolicy("s1", "python", concurrency=1), StepPolicy("s3", "python", concurrency=3),
                StepPolicy("s5", "python", concurrency=5)]
    async with Harness(q, inner, policies) as h:
        await h.emit(40, ["s1", "s3", "s5"])
        await h.until(h.drained)
    assert gauge.done == {"s1": 40, "s3": 40, "s5": 40}
    assert gauge.max == {"s1": 1, "s3": 3, "s5": 5}  # never above the cap, and the cap was reached
    assert await q.dead() == [] and await q.counts() == {"ready": 0, "leased": 0, "dead": 0}
    assert h.worker.in_flight == Counter({"s1": 0, "s3": 0, "s5": 0})


async def test_runner_cap_across_steps(q: Queue) -> None:
    gauge = Gauge()

    async def inner(d: Delivery, p: StepPolicy) -> None:
        gauge.enter(p.runner, "all")
        try:
            await asyncio.sleep(0.01 + (d.id % 3) * 0.005)
        finally:
            gauge.leave(p.runner, "all")

    policies = [StepPolicy("x", "node", concurrency=10), StepPolicy("y", "node", concurrency=10),
                StepPolicy("z", "ruby", concurrency=10)]
    async with Harness(q, inner, policies, runner_concurrency=4) as h:
        await h.emit(30, ["x", "y", "z"])
        await h.until(h.drained)
    assert gauge.done == {"node": 60, "ruby": 30, "all": 90}
    assert gauge.max["node"] == 4 and gauge.max["ruby"] == 4  # the cap is per runner, over all its steps
    assert gauge.max["all"] > 4  # and not global
    assert h.worker.runner_in_flight == Counter({"node": 0, "ruby": 0})


async def test_fifo_through_the_worker(q: Queue) -> None:
    gauge = Gauge()
    order: dict[str, list[int]] = defaultdict(list)

    async def inner(d: Delivery, p: StepPolicy) -> None:
        group = d.event.message_group_id or "-"
        gauge.enter(group)
        try:
            await asyncio.sleep(0.003)
            if d.attempts == 1 and d.event.data["i"] % 4 == 1:
                raise RuntimeError("first try fails")  # a failing head must hold its group back
            order[group].append(d.event.data["i"])
        finally:
            gauge.leave(group)

    async with Harness(q, inner, [StepPolicy("f", "python", fifo=True, concurrency=10)], base=0.01) as h:
        for g in ("g1", "g2", "g3"):
            await h.emit(12, ["f"], group=g, prefix=f"{g}-", fifo=True)
        await h.until(h.drained)
    assert {g: order[g] for g in ("g1", "g2", "g3")} == {g: list(range(12)) for g in ("g1", "g2", "g3")}
    assert gauge.max["g1"] == gauge.max["g2"] == gauge.max["g3"] == 1
    assert await q.dead() == []


async def test_retries_then_success(q: Queue) -> None:
    seen: dict[str, list[int]] = defaultdict(list)

    async def inner(d: Delivery, p: StepPolicy) -> None:
        seen[d.event.id].append(d.attempts)
        if d.attempts < 3:
            raise RuntimeError(f"flaky {d.attempts}")

    async with Harness(q, inner, [StepPolicy("s", "python", max_attempts=3)]) as h:
        await h.emit(5, ["s"])
        await h.until(h.drained)
    assert dict(seen) == {f"e{i}": [1, 2, 3] for i in range(5)}  # acked on attempt 3
    assert h.dead == [] and await q.dead() == []
    assert await q.counts() == {"ready": 0, "leased": 0, "dead": 0}


SLACK = 0.25  # scheduling slack on a shared 2-core machine, on top of the backoff ceiling


async def test_exhausted_delivery_lands_in_dead_letters_with_backoff(q: Queue) -> None:
    base, cap, max_attempts = 0.05, 0.15, 6
    stamps: dict[str, list[tuple[int, float]]] = defaultdict(list)

    async def inner(d: Delivery, p: StepPolicy) -> None:
        stamps[d.event.id].append((d.attempts, time.monotonic()))
        raise RpcError(-32000, f"boom {d.attempts}", {"type": "TypeError", "stack": "at handler.js:1:1"})

    async with Harness(q, inner, [StepPolicy("s", "node", max_attempts=max_attempts)], base=base, cap=cap) as h:
        await h.emit(4, ["s"])
        await h.until(lambda: _dead_count(q, 4))
        await h.until(h.drained)
    letters = await q.dead()
    assert sorted(d.event.id for d in letters) == [f"e{i}" for i in range(4)]
    for letter in letters:
        assert letter.attempts == max_attempts and letter.step == "s"
        assert letter.error == f"TypeError: boom {max_attempts}" and letter.stack == "at handler.js:1:1"
        assert letter.first_at <= letter.failed_at
    assert sorted((d.event.id, e) for d, e in h.dead) == [(f"e{i}", f"TypeError: boom {max_attempts}")
                                                          for i in range(4)]
    gaps = []
    for eid, attempts in stamps.items():
        assert [a for a, _ in attempts] == list(range(1, max_attempts + 1)), eid  # no more, no fewer
        for n in range(1, max_attempts):
            gap = attempts[n][1] - attempts[n - 1][1]
            ceiling = min(cap, base * 2 ** (n - 1))
            assert 0 <= gap <= ceiling + SLACK, f"{eid}: gap after attempt {n} is {gap:.3f}s > {ceiling}s + slack"
            gaps.append(gap)
    # the ceilings add up to 0.05+0.1+0.15*3 = 0.6 s per delivery; full jitter averages half of that:
    # a total near zero would mean there is no backoff at all
    assert sum(gaps) > 0.2, gaps


async def _dead_count(q: Queue, n: int) -> bool:
    return (await q.counts())["dead"] >= n


async def test_reject_goes_straight_to_dead_letters(q: Queue) -> None:
    calls: Counter[str] = Counter()

    async def inner(d: Delivery, p: StepPolicy) -> None:
        calls[d.event.id] += 1
        if d.event.data["i"] == 0:
            raise Reject("event data does not match the step's input schema: /i: bad")

    async with Harness(q, inner, [StepPolicy("s", "python", max_attempts=5)]) as h:
        await h.emit(3, ["s"])
        await h.until(h.drained)
    [letter] = await q.dead()
    assert letter.event.id == "e0" and letter.attempts == 1
    assert letter.error == "rejected: event data does not match the step's input schema: /i: bad"
    assert calls == {"e0": 1, "e1": 1, "e2": 1}
    assert [(d.event.id, e) for d, e in h.dead] == [("e0", letter.error)]


async def test_max_attempts_one_means_no_retry(q: Queue) -> None:
    calls: Counter[str] = Counter()

    async def inner(d: Delivery, p: StepPolicy) -> None:
        calls[d.event.id] += 1
        raise ValueError("no")

    async with Harness(q, inner, [StepPolicy("s", "python", max_attempts=1)]) as h:
        await h.emit(2, ["s"])
        await h.until(h.drained)
    assert calls == {"e0": 1, "e1": 1}
    assert [(d.attempts, d.error) for d in await q.dead()] == [(1, "ValueError: no")] * 2


async def test_stop_lets_running_handlers_finish_within_grace(q: Queue, tmp_path: Path) -> None:
    started: list[str] = []
    finished: list[str] = []
    cancelled: list[str] = []

    async def inner(d: Delivery, p: StepPolicy) -> None:
        started.append(d.event.id)
        try:
            await asyncio.sleep(0.3 if d.event.id.startswith("fast") else 30)
        except asyncio.CancelledError:
            cancelled.append(d.event.id)
            raise
        finished.append(d.event.id)

    h = Harness(q, inner, [StepPolicy("s", "python", concurrency=10)])
    h.worker.start()
    await h.emit(3, ["s"], prefix="fast")
    await h.emit(2, ["s"], prefix="slow")
    await h.until(lambda: _true(len(started) == 5))
    t0 = time.monotonic()
    left = await h.worker.stop(1.0)
    elapsed = time.monotonic() - t0
    assert left == 2
    assert sorted(finished) == ["fast0", "fast1", "fast2"] and sorted(cancelled) == ["slow0", "slow1"]
    assert 1.0 - 0.05 <= elapsed < 1.0 + 2.0
    assert await q.counts() == {"ready": 0, "leased": 2, "dead": 0}  # the cancelled stay leased in the journal
    assert h.worker.busy() == 0 and h.worker.in_flight["s"] == 0
    # a stopped worker takes nothing new
    await h.emit(1, ["s"], prefix="late")
    await asyncio.sleep(0.3)
    assert "late0" not in started
    assert await q.counts() == {"ready": 1, "leased": 2, "dead": 0}
    if isinstance(q, SqliteQueue):  # the next start hands the cancelled ones out again
        await q.close()
        q2 = SqliteQueue(q.path)
        try:
            assert await q2.recover() == 2
            got = await q2.take("s", 10, False)
            assert sorted(d.event.id for d in got) == ["late0", "slow0", "slow1"]
            assert {d.event.id: d.attempts for d in got} == {"late0": 1, "slow0": 2, "slow1": 2}
        finally:
            await q2.close()


async def _true(value: bool) -> bool:
    return value


async def test_stop_returns_as_soon_as_work_is_done(q: Queue) -> None:
    async def inner(d: Delivery, p: StepPolicy) -> None:
        await asyncio.sleep(0.1)

    h = Harness(q, inner, [StepPolicy("s", "python")])
    assert await h.worker.stop(5) == 0  # never started: nothing to wait for
    h = Harness(q, inner, [StepPolicy("s", "python")])
    h.worker.start()
    await h.emit(3, ["s"])
    await h.until(lambda: _true(h.worker.busy() == 3))
    t0 = time.monotonic()
    assert await h.worker.stop(10) == 0
    assert time.monotonic() - t0 < 5  # it waited for the handlers, not for the whole grace
    assert await q.counts() == {"ready": 0, "leased": 0, "dead": 0}


# --- backoff

def test_backoff_is_full_jitter_under_the_capped_ceiling() -> None:
    base, cap = 0.5, 4.0
    assert [backoff(n, base, cap, rand=lambda: 1.0) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert [backoff(n, base, cap, rand=lambda: 0.0) for n in range(1, 7)] == [0.0] * 6
    assert backoff(3, base, cap, rand=lambda: 0.25) == 0.5
    assert backoff(0, base, cap, rand=lambda: 1.0) == 0.5  # attempt 0 is treated as the first
    draws = iter([0.1, 0.9])
    assert backoff(2, 1.0, 30.0, rand=lambda: next(draws)) == pytest.approx(0.2)


@settings(max_examples=300, deadline=None, database=None)
@given(attempt=st.integers(1, 64), base=st.floats(0.001, 10), cap=st.floats(0.001, 100), r=st.floats(0, 1))
def test_backoff_bounds(attempt: int, base: float, cap: float, r: float) -> None:
    ceiling = min(cap, base * 2 ** (attempt - 1))
    got = backoff(attempt, base, cap, rand=lambda: r)
    assert 0 <= got <= ceiling
    assert got == pytest.approx(r * ceiling)
    assert 0 <= backoff(attempt, base, cap) <= ceiling  # with the real random source


def test_backoff_with_many_attempts_stays_at_the_cap() -> None:
    # queue.maxRetries has no upper bound (invoker.policy), so attempt numbers above 1024 are reachable:
    # base * 2 ** 1024 overflows a float (OverflowError) instead of being capped
    assert backoff(1025, 1.0, 30.0, rand=lambda: 1.0) == 30.0
    assert backoff(5000, 0.001, 30.0, rand=lambda: 0.5) == 15.0


async def test_huge_max_attempts_still_ends_in_dead_letters() -> None:
    """An always-failing delivery with queue.maxRetries above 1024 must still be retried and finally buried;
    with the OverflowError above, with_retries raises out of the handler at attempt 1025 and the delivery
    stays leased for the rest of the run: neither retried nor dead-lettered."""
    q = MemoryQueue()
    attempts: list[int] = []

    async def inner(d: Delivery, p: StepPolicy) -> None:
        attempts.append(d.attempts)
        raise RuntimeError("always")

    async with Harness(q, inner, [StepPolicy("s", "python", max_attempts=1030)], base=1e-9, cap=1e-9) as h:
        await h.emit(1, ["s"])
        deadline = time.monotonic() + 30
        while (await q.counts())["dead"] == 0 and time.monotonic() < deadline:
            if h.worker.busy() == 0 and (await q.counts())["leased"] == 1:
                await asyncio.sleep(0.2)  # give a stuck lease a moment to prove it is stuck
                if h.worker.busy() == 0 and (await q.counts())["leased"] == 1:
                    break
            await asyncio.sleep(0.01)
    assert await q.counts() == {"ready": 0, "leased": 0, "dead": 1}, f"stuck after attempt {attempts[-1]}"
    assert attempts == list(range(1, 1031))


async def test_a_step_sharing_a_busy_runner_is_not_starved(q: Queue) -> None:
    """`big` keeps its runner nearly full and refills by the quarter of its own slots; `small`, on the same
    runner, still gets the runner's spare slots while `big` has a backlog."""
    started: dict[str, float] = {}
    t0 = time.monotonic()

    async def inner(d: Delivery, p: StepPolicy) -> None:
        started.setdefault(d.step, time.monotonic() - t0)
        await asyncio.sleep(0.02)

    policies = [StepPolicy("big", "python", concurrency=18), StepPolicy("small", "python", concurrency=20)]
    async with Harness(q, inner, policies, runner_concurrency=20) as h:
        await h.emit(400, ["big"], prefix="b")  # ~0.45 s of work at 18 at a time
        await asyncio.sleep(0.05)
        await h.emit(5, ["small"], prefix="s")
        await h.until(lambda: asyncio.sleep(0, "small" in started))
        assert started["small"] < 0.3  # long before big's backlog is gone
        await h.until(h.drained)


async def test_an_idle_steps_due_delivery_is_found_while_other_steps_keep_the_worker_busy(
        q: Queue) -> None:
    """A delivery that comes due with no wake of its own (here: put straight into the queue, as a retry
    scheduled before a restart would be) is found by the look at every step that happens at least once
    per poll, even though finishing `busy` deliveries wakes the worker all the time."""
    handled: list[str] = []

    async def inner(d: Delivery, p: StepPolicy) -> None:
        handled.append(d.step)
        await asyncio.sleep(0.001)

    policies = [StepPolicy("busy", "python", concurrency=4), StepPolicy("idle", "python", concurrency=4)]
    async with Harness(q, inner, policies) as h:
        await h.emit(3000, ["busy"], prefix="b")
        await asyncio.sleep(0.1)  # the worker has looked at `idle` and found nothing
        await q.put(Event("t", {}, "tr", id="late"), [Subscription("idle")])  # no wake
        await h.until(lambda: asyncio.sleep(0, "idle" in handled), timeout=2)
        assert handled.count("busy") < 3000  # found while `busy` was still going
        await h.until(h.drained)
