"""Many timeouts on one loop timer per time slot: the runners' invocation deadlines (host/runners/deadline.py)
and the HTTP connections' keep-alive timeouts (host/web/keep_alive.py).

A timer handle per timeout (`loop.call_later`, then cancelling it) cost more than the rest of an invocation's
wait on uvloop (≈11 µs against ≈3 µs measured under load here), and nearly every timeout is cancelled long
before it fires. Deadlines are rounded up to the next slot instead, and every member due in one slot shares
that slot's timer: a timeout fires up to a slot late, never early. A slot whose members are all gone is dropped
with its timer at once: left until its deadline (30 s for an invocation), the slots of a burst held their
timers and emptied dicts that long, and a host under bursts grew by megabytes. Only the newest slot is kept once
empty, until a newer one is made: one request at a time (wrk -c1) made and cancelled a timer per request
otherwise, every timeout of a slot's window falling in that same slot.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

M = TypeVar("M", bound=Hashable)
T = TypeVar("T")


class SlotTimers(Generic[M]):
    """One timer per slot of the loop's clock that has members due in it; `fire(member)` for each member of a
    slot when its timer runs."""

    def __init__(self, loop: asyncio.AbstractEventLoop, slot: float, fire: Callable[[M], object]) -> None:
        self._loop, self._slot, self._fire = loop, slot, fire
        # slot → (its timer, the members due in it)
        self._slots: dict[float, tuple[asyncio.TimerHandle, dict[M, None]]] = {}
        self._newest = 0.0  # the slot last made: kept when it empties, as the next members likely join it

    def add(self, member: M, delay: float) -> float:
        """Fire `member` `delay` seconds from now (up to a slot later), unless discarded; the slot's key."""
        at = math.ceil((self._loop.time() + delay) / self._slot) * self._slot
        slot = self._slots.get(at)
        if slot is None:
            self._drop_if_idle(self._newest)
            slot = self._slots[at] = (self._loop.call_at(at, self._expire, at), {})
            self._newest = at
        slot[1][member] = None
        return at

    def discard(self, at: float, member: M) -> None:
        slot = self._slots.get(at)
        if slot is not None:
            slot[1].pop(member, None)
            if not slot[1] and at != self._newest:
                slot[0].cancel()
                del self._slots[at]

    def _drop_if_idle(self, at: float) -> None:
        slot = self._slots.get(at)
        if slot is not None and not slot[1]:
            slot[0].cancel()
            del self._slots[at]

    def _expire(self, at: float) -> None:
        slot = self._slots.pop(at, None)
        for member in list(slot[1]) if slot is not None else ():
            self._fire(member)

    def __len__(self) -> int:
        """Slots holding a loop timer."""
        return len(self._slots)


def one_per_loop(registry: dict[asyncio.AbstractEventLoop, T], loop: asyncio.AbstractEventLoop,
                 make: Callable[[asyncio.AbstractEventLoop], T]) -> T:
    """`registry`'s object for `loop`, made on first use; a new loop (tests run many) replaces the old one's."""
    found = registry.get(loop)
    if found is None:
        registry.clear()
        found = registry[loop] = make(loop)
    return found
