"""Worker threads for plain `def` handlers, shared fairly between steps, that hung handlers cannot fill.

A thread cannot be killed: a cancelled `def` handler blocked in C (a socket read, `time.sleep`) keeps
its thread until the call returns. So the pool counts two things:

- *live* calls: admitted and not cancelled. At most `threads` in all, and at most `per_step` for one
  step (file), so one slow or hung step never takes every thread from the others. Calls past either
  limit wait (in order) for a slot; a waiting call that is cancelled never takes one.
- *stuck* calls: cancelled (the host timed them out) while their thread still runs. They stop counting
  against the other steps at once (the executor grows by one thread in their place) but still count
  against their own step's `per_step` until they return: a step whose handler hangs cannot pile up
  more threads, and its later calls wait (and time out) while the other steps run normally.
  At most `max_stuck` of them in all: past that the runner is saturated by calls that will not return,
  and `on_saturated` is called once (the runner then drains the rest and exits; the host restarts it).

Defaults: 64 threads, 32 per step, 64 stuck; `STEPPE_PY_THREADS`, `STEPPE_PY_THREADS_PER_STEP`,
`STEPPE_PY_MAX_STUCK` change them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from typing import Any


def _env_int(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, default)))
    except ValueError:
        return default


class SyncPool:
    def __init__(self, loop: asyncio.AbstractEventLoop, *, threads: int | None = None,
                 per_step: int | None = None, max_stuck: int | None = None,
                 on_saturated: Callable[[int], None] | None = None) -> None:
        self.loop = loop
        self.threads = threads or _env_int("STEPPE_PY_THREADS", 64)
        self.per_step = min(self.threads, per_step or _env_int("STEPPE_PY_THREADS_PER_STEP", 32))
        self.max_stuck = max_stuck or _env_int("STEPPE_PY_MAX_STUCK", 64)
        self.on_saturated = on_saturated
        self.live = 0
        self.stuck = 0
        self._per_key: dict[Any, int] = {}
        self._waiting: deque[tuple[Any, asyncio.Future[None]]] = deque()
        self._saturated = False
        self.executor = concurrent.futures.ThreadPoolExecutor(self.threads + self.max_stuck, "steppe-handler")

    async def run(self, key: Any, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(*args)` in a worker thread once `key` (the step) may have one more."""
        await self._admit(key)
        cf = self.executor.submit(fn, *args)
        stuck = False
        try:
            return await asyncio.wrap_future(cf, loop=self.loop)
        except asyncio.CancelledError:
            if not cf.done():  # its thread is still in the handler: no longer live, still its step's
                stuck = True
                self._stick(key, cf)
            raise
        finally:
            self._release(key, keep_step=stuck)

    def _may_start(self, key: Any) -> bool:
        return (self.live < self.threads and self._per_key.get(key, 0) < self.per_step
                and self.live + self.stuck < self.threads + self.max_stuck)

    async def _admit(self, key: Any) -> None:
        if not self._waiting and self._may_start(key):
            self._take(key)
            return
        waiter: asyncio.Future[None] = self.loop.create_future()
        self._waiting.append((key, waiter))
        self._wake()  # the waiters ahead may all be held by their own step's limit, not by this one
        try:
            await waiter  # _wake took the slot for us
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release(key)  # admitted and cancelled in the same loop turn: hand it on
            else:
                with suppress(ValueError):
                    self._waiting.remove((key, waiter))
            raise

    def _take(self, key: Any) -> None:
        self.live += 1
        self._per_key[key] = self._per_key.get(key, 0) + 1

    def _release(self, key: Any, keep_step: bool = False) -> None:
        self.live -= 1
        if keep_step:
            self._wake()
            return
        self._forget(key)

    def _forget(self, key: Any) -> None:
        left = self._per_key[key] - 1
        if left:
            self._per_key[key] = left
        else:
            del self._per_key[key]
        self._wake()

    def _wake(self) -> None:
        # the first waiter whose step is under its limit goes next; others keep their place
        for item in list(self._waiting):
            key, waiter = item
            if waiter.done():
                self._waiting.remove(item)
                continue
            if not self._may_start(key):
                if self.live >= self.threads or self.live + self.stuck >= self.threads + self.max_stuck:
                    return  # nobody can start
                continue
            self._waiting.remove(item)
            self._take(key)
            waiter.set_result(None)

    def _stick(self, key: Any, cf: concurrent.futures.Future[Any]) -> None:
        self.stuck += 1
        cf.add_done_callback(lambda _: self._from_thread(lambda: self._unstick(key)))
        if self.stuck >= self.max_stuck and not self._saturated:
            self._saturated = True
            if self.on_saturated is not None:
                self.on_saturated(self.stuck)

    def _unstick(self, key: Any) -> None:
        self.stuck -= 1
        self._forget(key)

    def _from_thread(self, fn: Callable[[], None]) -> None:
        with suppress(RuntimeError):  # the loop is closed: the runner is exiting
            self.loop.call_soon_threadsafe(fn)
