"""Waiting for a runner's answer with a timeout, without a timer per invocation.

A timer handle per call (`loop.call_later`, then cancelling it) cost more than the rest of the wait on
uvloop (≈11 µs against ≈3 µs measured under load here), and nearly every invocation ends long before its
timeout. Deadlines are rounded up to the next SLOT seconds instead, and every wait ending in one slot
shares that slot's timer: a timeout fires up to SLOT late, never early. A slot whose waits have all ended
is dropped with its timer at once: left until its deadline (the invocation timeout, 30 s by default), the
slots of a burst held their timers and emptied dicts that long, and a host under bursts grew by megabytes.
Only the newest slot is kept once empty, until a newer one is made: one request at a time (wrk -c1) made
and cancelled a timer per request otherwise, every wait of a 10 ms window falling in that same slot.

The answer wakes its wait directly when its source can do so (`wake_on`, RpcConnection.wake_on_answer):
a done callback on the answer's future would run one loop turn later, and only then wake the waiting task.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

SLOT = 0.01  # seconds: how late a timeout may fire


class Deadlines:
    """One timer per slot of the loop's clock that has waits ending in it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        # slot → (its timer, the waits ending in it)
        self._slots: dict[float, tuple[asyncio.TimerHandle, dict[asyncio.Future[None], None]]] = {}
        self._newest = 0.0  # the slot last made: kept when it empties, as the next waits likely join it

    def add(self, waiter: asyncio.Future[None], timeout: float) -> float:
        """Wake `waiter` (set its result) `timeout` seconds from now, unless it is done by then; the slot's
        key, for `discard`."""
        at = math.ceil((self._loop.time() + timeout) / SLOT) * SLOT
        slot = self._slots.get(at)
        if slot is None:
            self._drop_if_idle(self._newest)
            slot = self._slots[at] = (self._loop.call_at(at, self._expire, at), {})
            self._newest = at
        slot[1][waiter] = None
        return at

    def discard(self, at: float, waiter: asyncio.Future[None]) -> None:
        slot = self._slots.get(at)
        if slot is not None:
            timer, waiters = slot
            waiters.pop(waiter, None)
            if not waiters and at != self._newest:
                timer.cancel()
                del self._slots[at]

    def _drop_if_idle(self, at: float) -> None:
        slot = self._slots.get(at)
        if slot is not None and not slot[1]:
            slot[0].cancel()
            del self._slots[at]

    def _expire(self, at: float) -> None:
        slot = self._slots.pop(at, None)
        for waiter in slot[1] if slot is not None else ():
            if not waiter.done():
                waiter.set_result(None)

    def __len__(self) -> int:
        """Slots with waits pending (each holds one timer)."""
        return len(self._slots)


_deadlines: dict[asyncio.AbstractEventLoop, Deadlines] = {}


def deadlines(loop: asyncio.AbstractEventLoop) -> Deadlines:
    found = _deadlines.get(loop)
    if found is None:
        _deadlines.clear()  # a new loop (tests run many): the old one's slots are gone with it
        found = _deadlines[loop] = Deadlines(loop)
    return found


async def settled(fut: asyncio.Future[Any], timeout: float | None,
                  wake_on: Callable[[asyncio.Future[None]], None] | None = None) -> bool:
    """Wait until `fut` is done or `timeout` seconds have passed; whether it is done. `fut` is never
    cancelled (the runner still owes its answer; a cancel is asked of it separately), neither on timeout nor
    when the waiting task is cancelled: only the waiter is. `wake_on(waiter)`, if given, has `waiter`'s
    result set (None) by whatever settles `fut`, in the same callback; else a done callback on `fut` does."""
    loop = fut.get_loop()  # asyncio.get_running_loop() costs a getpid() per call on 3.11
    waiter: asyncio.Future[None] = loop.create_future()

    def wake(_: Any) -> None:
        if not waiter.done():
            waiter.set_result(None)

    if wake_on is None:
        fut.add_done_callback(wake)
    else:
        wake_on(waiter)
    slots = deadlines(loop) if timeout is not None else None
    at = slots.add(waiter, timeout) if slots is not None and timeout is not None else 0.0
    try:
        await waiter
    finally:
        if slots is not None:
            slots.discard(at, waiter)
        if wake_on is None:
            fut.remove_done_callback(wake)
    return fut.done()
