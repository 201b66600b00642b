"""Keep-alive timeouts of the HTTP connections, one loop timer per SLOT window instead of one per response.

uvicorn arms a timer (`loop.call_later(timeout_keep_alive, ...)`) when each response completes and cancels
it when the connection's next request arrives: a timer made and cancelled per request, which on uvloop costs
more than the rest of an invocation's wait (host/runners/deadline.py says why that module shares its timers).
Here the deadline is rounded up to the next SLOT and every connection idling into the same window shares that
window's timer: an idle connection is closed up to SLOT later than `timeout_keep_alive`, never sooner. As in
deadline.py, only the newest window is kept once all its connections are busy again.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

SLOT = 0.25  # seconds: how late an idle keep-alive connection may be closed


class KeepAliveHandle:
    """What `call_later` returns: uvicorn only cancels it (when the connection's next request arrives)."""

    __slots__ = ("_timers", "_at", "callback")

    def __init__(self, timers: KeepAliveTimers, at: float, callback: Callable[[], None]) -> None:
        self._timers, self._at, self.callback = timers, at, callback

    def cancel(self) -> None:
        self._timers.discard(self._at, self)


class KeepAliveTimers:
    """Stands in for the loop while uvicorn completes a response (`call_later` for the keep-alive timeout;
    `create_task` for a pipelined request it starts then)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._slots: dict[float, tuple[asyncio.TimerHandle, dict[KeepAliveHandle, None]]] = {}
        self._newest = 0.0

    def call_later(self, delay: float, callback: Callable[[], None]) -> KeepAliveHandle:
        at = math.ceil((self._loop.time() + delay) / SLOT) * SLOT
        slot = self._slots.get(at)
        if slot is None:
            self._drop_if_idle(self._newest)
            slot = self._slots[at] = (self._loop.call_at(at, self._expire, at), {})
            self._newest = at
        handle = KeepAliveHandle(self, at, callback)
        slot[1][handle] = None
        return handle

    def create_task(self, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        return self._loop.create_task(coro, **kwargs)

    def __getattr__(self, name: str) -> Any:
        # anything else uvicorn may ask of its loop while completing a response (another uvicorn release may
        # ask more than call_later and create_task) is the real loop's
        return getattr(self._loop, name)

    def discard(self, at: float, handle: KeepAliveHandle) -> None:
        slot = self._slots.get(at)
        if slot is not None:
            slot[1].pop(handle, None)
            if not slot[1] and at != self._newest:
                self._drop_if_idle(at)

    def _drop_if_idle(self, at: float) -> None:
        slot = self._slots.get(at)
        if slot is not None and not slot[1]:
            slot[0].cancel()
            del self._slots[at]

    def _expire(self, at: float) -> None:
        slot = self._slots.pop(at, None)
        for handle in list(slot[1]) if slot is not None else ():
            handle.callback()

    def __len__(self) -> int:
        """Windows holding a loop timer."""
        return len(self._slots)


_timers: dict[asyncio.AbstractEventLoop, KeepAliveTimers] = {}


def keep_alive_timers(loop: asyncio.AbstractEventLoop) -> KeepAliveTimers:
    found = _timers.get(loop)
    if found is None:
        _timers.clear()  # a new loop (tests run many servers): the old one's windows are gone with it
        found = _timers[loop] = KeepAliveTimers(loop)
    return found
