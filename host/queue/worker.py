"""The delivery loop: lease due deliveries within each step's and each runner's concurrency, and run
them through the handler chain (retries and dead-lettering are middleware around it, see retries.py)."""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from ..db import StorageError
from ..tasks import raise_if_cancelling
from .base import Delivery, Queue

log = logging.getLogger("steppe.worker")


@dataclass(frozen=True)
class StepPolicy:
    step: str
    runner: str
    fifo: bool = False
    concurrency: int = 50  # queue.concurrency
    max_attempts: int = 3  # queue.maxRetries: attempts in all before the dead-letter store
    timeout: float = 300.0  # handler.timeout, capped by queue.visibilityTimeout
    delay: float = 0.0  # queue.delaySeconds


Handler = Callable[[Delivery, StepPolicy], Awaitable[None]]
# starts the worker's loop as a task: plainly, or under a supervisor that restarts it (host/tasks.py)
Spawn = Callable[[Callable[[], Coroutine[Any, Any, None]]], "asyncio.Task[None]"]


class Unrecorded(Exception):
    """A delivery ran, but its outcome (ack, retry or dead letter) could not be written: `record()` writes
    it again; until then the delivery stays leased."""

    def __init__(self, record: Callable[[], Awaitable[None]], cause: StorageError) -> None:
        super().__init__(str(cause))
        self.record = record


async def _unset(delivery: Delivery, policy: StepPolicy) -> None:
    raise RuntimeError("DeliveryWorker.handle was never set")


class DeliveryWorker:
    def __init__(self, queue: Queue, handle: Handler | None = None, runner_concurrency: int = 200,
                 poll: float = 0.5) -> None:
        self.queue = queue
        self.handle: Handler = handle or _unset
        self.runner_concurrency, self.poll = runner_concurrency, poll
        self.policies: dict[str, StepPolicy] = {}
        self.in_flight: Counter[str] = Counter()  # by step
        self.runner_in_flight: Counter[str] = Counter()  # by runner language
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wake = asyncio.Event()
        # Which steps the next look takes for (a take is a query per step on a durable queue): all of them
        # after a poll, a timer or a plain wake(); else only steps given new deliveries (`_fresh`) and steps
        # whose last take filled all the room it had (`_backlogged`: more may be waiting).
        self._everything = True
        self._last_everything = 0.0  # loop time of the last look at every step: one at least every `poll`
        self._fresh: set[str] = set()
        self._backlogged: set[str] = set()
        self._taking = False
        self._loop_task: asyncio.Task[None] | None = None
        # outcomes that could not be written (storage fault), written again once the store can
        self.unrecorded: dict[int, Callable[[], Awaitable[None]]] = {}
        # leased deliveries that failed in the host itself: released (run again) once the store writes
        self.stranded: set[int] = set()

    def set_policies(self, policies: dict[str, StepPolicy]) -> None:
        self.policies = dict(policies)
        self.wake()

    def wake(self, delay: float = 0.0, steps: Iterable[str] | None = None) -> None:
        """Look for due deliveries now, or after `delay` seconds (when a retry or a delayed one is due);
        `steps`: only these steps got new deliveries (the bus says so), the others need no look."""
        if delay > 0:
            # a few ms late on purpose: the loop's timer may fire just before the wall clock reaches the
            # delivery's available_at, and an early look would find nothing until the next poll
            asyncio.get_running_loop().call_later(delay + 0.005, self.wake)
            return
        if steps is None:
            self._everything = True
        else:
            self._fresh.update(steps)
        self._wake.set()

    def start(self, spawn: Spawn | None = None) -> None:
        self._taking = True
        self._loop_task = (spawn or (lambda body: asyncio.get_running_loop().create_task(body())))(self._run)

    async def _run(self) -> None:
        while self._taking:
            raise_if_cancelling()
            self._wake.clear()
            try:
                await self._release_stranded()
                await self._fill()
            except StorageError:
                pass  # the store reported it (health); look again at the next poll
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll)  # the poll catches delayed deliveries
            except TimeoutError:
                self._everything = True

    async def _fill(self) -> None:
        now = asyncio.get_running_loop().time()
        # every step at least once per poll even when wakes never stop (a busy host): deliveries that came
        # due with no timer of this process behind them (a retry scheduled before a restart, another host's)
        everything = self._everything or now - self._last_everything >= self.poll
        if everything:
            self._last_everything = now
        self._everything = False
        fresh, self._fresh = self._fresh, set()
        for step, policy in self.policies.items():
            if not (everything or step in fresh or step in self._backlogged) or not self._taking:
                continue
            own = policy.concurrency - self.in_flight[step]
            room = min(own, self.runner_concurrency - self.runner_in_flight[policy.runner])
            # a busy step refills once a quarter of its own slots are free, not slot by slot: one take of 50
            # rather than 50 takes of one (its deliveries in flight meanwhile wake the worker as they end).
            # Only its own slots: the runner's, shared with other steps, are taken as they come, so a step
            # never waits on slots that other steps keep using.
            if own < max(1, policy.concurrency // 4) or room <= 0:
                self._backlogged.add(step)  # not looked at now: keep it in view
                continue
            taken = await self.queue.take(step, room, policy.fifo)
            if len(taken) < room:
                self._backlogged.discard(step)  # drained: new deliveries for it come with a wake
            else:
                self._backlogged.add(step)
            for delivery in taken:
                self.in_flight[step] += 1
                self.runner_in_flight[policy.runner] += 1
                task = asyncio.get_running_loop().create_task(self._deliver(delivery, policy))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _release_stranded(self) -> None:
        if self.unrecorded:
            for did, record in list(self.unrecorded.items()):
                await record()
                del self.unrecorded[did]
            log.info("the outcomes of deliveries that could not be written are recorded now")
        if self.stranded:
            ids = sorted(self.stranded)
            released = await self.queue.release(ids)
            self.stranded.difference_update(ids)
            self._everything = True
            log.info(f"{released} delivery(ies) that failed in the host are queued again")

    async def _deliver(self, delivery: Delivery, policy: StepPolicy) -> None:
        try:
            await self.handle(delivery, policy)
        except Unrecorded as e:
            self.unrecorded[delivery.id] = e.record
            log.error(f"delivery {delivery.id} of step {policy.step!r}: its outcome could not be written ({e}); "
                      "it stays leased and is recorded once the store can write")
        except Exception as e:  # a storage fault or a bug outside the handler: never lose the delivery
            self.stranded.add(delivery.id)
            log.error(f"delivery {delivery.id} of step {policy.step!r} failed in the host "
                      f"({type(e).__name__}: {e}); it will be queued again\n{traceback.format_exc()}")
        finally:
            self.in_flight[policy.step] -= 1
            self.runner_in_flight[policy.runner] -= 1
            if policy.fifo:  # the next delivery of its message group may be due now
                self._fresh.add(policy.step)
            self._wake.set()

    def busy(self) -> int:
        return len(self._tasks)

    async def stop(self, grace: float) -> int:
        """Stop taking work; let running deliveries finish within `grace` seconds. Those still running
        then are cancelled and stay leased in the journal, to run again after the next start.
        Returns how many were left."""
        self._taking = False
        self._wake.set()
        if self._loop_task:
            await asyncio.gather(self._loop_task, return_exceptions=True)
        if not self._tasks:
            return 0
        _, late = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        return len(late)
