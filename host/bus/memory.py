"""The in-process bus: fan-out to every subscriber, nothing kept across restarts (the testing tool)."""

from __future__ import annotations

import asyncio
from typing import Any

from .base import Event, EventBus


class MemoryBus(EventBus):
    def __init__(self, concurrency: int = 100) -> None:
        super().__init__()
        self._limit = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[Any]] = set()

    async def _enqueue(self, event: Event, steps: list[str]) -> None:
        for step in steps:
            task = asyncio.get_running_loop().create_task(self._run(step, event))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, step: str, event: Event) -> None:
        assert self._deliver, "bus.start() was not called"
        async with self._limit:
            try:
                await self._deliver(step, event)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.record_failure(step, event, f"{type(e).__name__}: {e}")

    def pending(self) -> int:
        return len(self._tasks)

    async def stop(self, grace: float = 5.0) -> None:
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
