"""Waiting for a runner's answer with a timeout, without a timer per invocation: the timeouts share one loop
timer per SLOT (host/slot_timers.py says why).

The answer wakes its wait directly when its source can do so (`wake_on`, RpcConnection.wake_on_answer):
a done callback on the answer's future would run one loop turn later, and only then wake the waiting task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..slot_timers import SlotTimers, one_per_loop

SLOT = 0.01  # seconds: how late a timeout may fire


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _make(loop: asyncio.AbstractEventLoop) -> SlotTimers[asyncio.Future[None]]:
    return SlotTimers(loop, SLOT, _wake)


_deadlines: dict[asyncio.AbstractEventLoop, SlotTimers[asyncio.Future[None]]] = {}


def deadlines(loop: asyncio.AbstractEventLoop) -> SlotTimers[asyncio.Future[None]]:
    """The loop's deadlines: a waiter added is woken (its result set) when its slot's timer runs."""
    return one_per_loop(_deadlines, loop, _make)


async def settled(fut: asyncio.Future[Any], timeout: float | None,
                  wake_on: Callable[[asyncio.Future[None]], None] | None = None) -> bool:
    """Wait until `fut` is done or `timeout` seconds have passed; whether it is done. `fut` is never
    cancelled (the runner still owes its answer; a cancel is asked of it separately), neither on timeout nor
    when the waiting task is cancelled: only the waiter is. `wake_on(waiter)`, if given, has `waiter`'s
    result set (None) by whatever settles `fut`, in the same callback; else a done callback on `fut` does."""
    loop = fut.get_loop()  # asyncio.get_running_loop() costs a getpid() per call on 3.11
    waiter: asyncio.Future[None] = loop.create_future()

    def wake(_: Any) -> None:
        _wake(waiter)

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
