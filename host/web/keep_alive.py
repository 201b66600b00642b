"""Keep-alive timeouts of the HTTP connections, one loop timer per SLOT window instead of one per response.

uvicorn arms a timer (`loop.call_later(timeout_keep_alive, ...)`) when each response completes and cancels
it when the connection's next request arrives: a timer made and cancelled per request, which on uvloop costs
more than the rest of an invocation's wait (host/slot_timers.py, shared with the invocation deadlines).
Here the deadline is rounded up to the next SLOT and every connection idling into the same window shares that
window's timer: an idle connection is closed up to SLOT later than `timeout_keep_alive`, never sooner. As for
every slot timer, only the newest window is kept once all its connections are busy again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..slot_timers import SlotTimers, one_per_loop

SLOT = 0.25  # seconds: how late an idle keep-alive connection may be closed


class KeepAliveHandle:
    """What `call_later` returns: uvicorn only cancels it (when the connection's next request arrives)."""

    __slots__ = ("_timers", "_at", "callback")

    def __init__(self, timers: SlotTimers[KeepAliveHandle], callback: Callable[[], None]) -> None:
        self._timers, self._at, self.callback = timers, 0.0, callback

    def cancel(self) -> None:
        self._timers.discard(self._at, self)

    def fire(self) -> None:
        self.callback()


class KeepAliveTimers:
    """Stands in for the loop while uvicorn completes a response (`call_later` for the keep-alive timeout;
    `create_task` for a pipelined request it starts then)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._slots: SlotTimers[KeepAliveHandle] = SlotTimers(loop, SLOT, KeepAliveHandle.fire)

    def call_later(self, delay: float, callback: Callable[[], None]) -> KeepAliveHandle:
        handle = KeepAliveHandle(self._slots, callback)
        handle._at = self._slots.add(handle, delay)
        return handle

    def create_task(self, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        return self._loop.create_task(coro, **kwargs)

    def __getattr__(self, name: str) -> Any:
        # anything else uvicorn may ask of its loop while completing a response (another uvicorn release may
        # ask more than call_later and create_task) is the real loop's
        return getattr(self._loop, name)

    def __len__(self) -> int:
        """Windows holding a loop timer."""
        return len(self._slots)


_timers: dict[asyncio.AbstractEventLoop, KeepAliveTimers] = {}


def keep_alive_timers(loop: asyncio.AbstractEventLoop) -> KeepAliveTimers:
    return one_per_loop(_timers, loop, KeepAliveTimers)
