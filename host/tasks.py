"""Supervised tasks: a long-running loop of the host (the delivery worker, each cron schedule, the storage
watch) that must not die quietly. An unexpected exception is logged with its traceback, reported in
health as `degraded` (kept for `keep_for` seconds after the restart, so a probe can see it), and the
loop starts again after a short backoff that grows while it keeps failing."""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Callable, Coroutine
from typing import Any

from .health import Health

log = logging.getLogger("steppe.tasks")
Body = Callable[[], Coroutine[Any, Any, None]]


def raise_if_cancelling() -> None:
    """End a long-running loop whose task was asked to stop, even when the CancelledError never reached it:
    redis-py (8.1) loses one that lands as a reply arrives, and returns the reply (or raises it as an
    error). A loop that went on would never end, and the host, stopping, would wait for it for good.
    Called at the top of each round and where a round's errors are caught."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class TaskSupervisor:
    def __init__(self, health: Health, *, backoff: float = 0.1, backoff_cap: float = 5.0, keep_for: float = 60.0,
                 stable_after: float = 30.0) -> None:
        self.health = health
        self.backoff, self.backoff_cap = backoff, backoff_cap
        self.keep_for = keep_for  # seconds a restart stays in health after it happened
        self.stable_after = stable_after  # a run this long resets the backoff
        self.restarts: dict[str, int] = {}
        self._clear_at: dict[str, asyncio.TimerHandle] = {}

    def supervise(self, name: str, body: Body) -> asyncio.Task[None]:
        """Run `body()` as a task, again and again while it raises; it ends when `body` returns or the
        task is cancelled."""
        return asyncio.get_running_loop().create_task(self._keep_running(name, body), name=name)

    def spawner(self, name: str) -> Callable[[Body], asyncio.Task[None]]:
        return lambda body: self.supervise(name, body)

    async def _keep_running(self, name: str, body: Body) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            raise_if_cancelling()
            started = loop.time()
            try:
                await body()
                return
            except Exception as e:
                raise_if_cancelling()  # not a failure: what a library made of the cancellation
                failures = 1 if loop.time() - started >= self.stable_after else failures + 1
                delay = min(self.backoff_cap, self.backoff * 2 ** (failures - 1))
                self._restarted(name, e, delay)
            await asyncio.sleep(delay)

    def _restarted(self, name: str, e: Exception, delay: float) -> None:
        self.restarts[name] = self.restarts.get(name, 0) + 1
        message = str(e).splitlines()[0][:200] if str(e) else ""
        what = f"{type(e).__name__}: {message}" if message else type(e).__name__
        log.error(f"{name} stopped on an unexpected error and restarts in {delay:.1f}s: {what}\n"
                  f"{''.join(traceback.format_exception(e)).rstrip()}")
        key = f"task:{name}"
        self.health.report(key, "degraded", f"{name} restarted after {what}")
        if (old := self._clear_at.pop(key, None)) is not None:
            old.cancel()
        self._clear_at[key] = asyncio.get_running_loop().call_later(self.keep_for, self.health.clear, key)

    def close(self) -> None:
        for handle in self._clear_at.values():
            handle.cancel()
        self._clear_at.clear()
