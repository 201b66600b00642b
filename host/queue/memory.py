"""The in-memory queue: the same semantics as the durable one, kept in this process only (the testing
tool, like Dramatiq's stub broker; `--bus memory`)."""

from __future__ import annotations

import bisect
import itertools
import time
from dataclasses import dataclass

from ..event import Event
from .base import DeadLetter, Delivery, Queue, Subscription


@dataclass
class _Slot:
    delivery: Delivery
    group: str | None
    available_at: float
    leased: bool = False


class MemoryQueue(Queue):
    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._slots: dict[int, _Slot] = {}
        self._ready: dict[str, list[int]] = {}  # per step, ids in order, leased ones excluded
        self._groups: dict[tuple[str, str], list[int]] = {}  # FIFO: every unacked id of a group, in order
        self._dead: dict[int, DeadLetter] = {}
        self._seen: dict[str, float] = {}

    async def put(self, event: Event, routes: list[Subscription], dedupe_window: float | None = None) -> bool:
        now = time.time()
        if dedupe_window is not None:
            if (at := self._seen.get(event.id)) is not None and at > now - dedupe_window:
                return False
            self._seen[event.id] = now
        for route in routes:
            group = event.message_group_id if route.fifo and event.message_group_id else None
            self._add(Delivery(next(self._ids), route.step, event, 0, now), group, now + route.delay)
        return True

    def _add(self, d: Delivery, group: str | None, available_at: float) -> None:
        self._slots[d.id] = _Slot(d, group, available_at)
        bisect.insort(self._ready.setdefault(d.step, []), d.id)
        if group is not None:
            bisect.insort(self._groups.setdefault((d.step, group), []), d.id)

    async def take(self, step: str, limit: int, fifo: bool) -> list[Delivery]:
        now = time.time()
        taken: list[Delivery] = []
        positions: list[int] = []
        ready = self._ready.get(step, [])
        for pos, did in enumerate(ready):
            if len(taken) >= limit:
                break
            slot = self._slots[did]
            if slot.available_at > now:
                continue
            if slot.group is not None and self._groups[(step, slot.group)][0] != did:
                continue  # not its group's head: an earlier one is pending or running
            slot.leased = True
            slot.delivery.attempts += 1
            positions.append(pos)
            taken.append(slot.delivery)
        for pos in reversed(positions):
            del ready[pos]
        return taken

    def _forget(self, d: Delivery) -> _Slot | None:
        slot = self._slots.pop(d.id, None)
        if slot and slot.group is not None:
            members = self._groups[(d.step, slot.group)]
            members.remove(d.id)
            if not members:
                del self._groups[(d.step, slot.group)]
        return slot

    async def ack(self, delivery: Delivery) -> None:
        self._forget(delivery)

    async def retry(self, delivery: Delivery, delay: float, error: str) -> None:
        slot = self._slots.get(delivery.id)
        if slot and slot.leased:
            slot.leased, slot.available_at = False, time.time() + delay
            delivery.last_error = error
            bisect.insort(self._ready.setdefault(delivery.step, []), delivery.id)

    async def bury(self, delivery: Delivery, error: str, stack: str = "") -> None:
        if (slot := self._forget(delivery)) is not None:
            self._dead[delivery.id] = DeadLetter(delivery.id, delivery.step, delivery.event, delivery.attempts,
                                                 error, stack, delivery.created_at, group=slot.group)

    async def recover(self) -> int:
        return 0  # nothing outlives the process

    async def release(self, ids: list[int]) -> int:
        now, released = time.time(), 0
        for did in ids:
            slot = self._slots.get(did)
            if slot and slot.leased:
                slot.leased, slot.available_at = False, now
                bisect.insort(self._ready.setdefault(slot.delivery.step, []), did)
                released += 1
        return released

    async def oldest_due(self, steps: list[str]) -> float:
        now, since = time.time(), None
        for step in steps:
            for did in self._ready.get(step, []):  # id order, unleased only
                if (at := self._slots[did].available_at) <= now:
                    since = at if since is None else min(since, at)
                    break
        return 0.0 if since is None else now - since

    async def counts(self) -> dict[str, int]:
        leased = sum(1 for s in self._slots.values() if s.leased)
        return {"ready": len(self._slots) - leased, "leased": leased, "dead": len(self._dead)}

    async def waiting_elsewhere(self, steps: set[str]) -> dict[str, int]:
        by_step: dict[str, int] = {}
        for slot in self._slots.values():
            if (step := slot.delivery.step) not in steps:
                by_step[step] = by_step.get(step, 0) + 1
        return by_step

    async def dead(self, step: str | None = None, ids: list[int] | None = None) -> list[DeadLetter]:
        return [d for d in self._dead.values()
                if (step is None or d.step == step) and (ids is None or d.id in ids)]

    async def replay(self, ids: list[int]) -> int:
        now, replayed = time.time(), 0
        for did in ids:
            if (letter := self._dead.pop(did, None)) is not None:
                assert letter.event is not None  # only the durable queue can hold an undecodable record
                self._add(Delivery(next(self._ids), letter.step, letter.event, 0, now), letter.group, now)
                replayed += 1
        return replayed

    async def drop(self, ids: list[int]) -> int:
        return sum(1 for did in ids if self._dead.pop(did, None) is not None)
