"""Firing cron steps on schedule; a run still going when its next tick comes makes that tick skip. With a
`lock` (several hosts sharing Redis, see cron_lock.py) a tick runs only on the host that wins its lock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any

from .logs import LogBook
from .steps import Step
from .tasks import raise_if_cancelling

Spawn = Callable[[str, Callable[[], Coroutine[Any, Any, None]]], "asyncio.Task[None]"]


def _plain(name: str, body: Callable[[], Coroutine[Any, Any, None]]) -> asyncio.Task[None]:
    return asyncio.get_running_loop().create_task(body(), name=name)


class CronScheduler:
    def __init__(self, run: Callable[[Step], Coroutine[Any, Any, None]], logs: LogBook,
                 spawn: Spawn = _plain, lock: Callable[[str, float], Awaitable[bool]] | None = None) -> None:
        self._run, self._logs, self._lock = run, logs, lock
        self._spawn = spawn  # how each schedule's loop is started: the host supervises them (host/tasks.py)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._expr: dict[str, tuple[str, str]] = {}  # name → (expression, path) it is scheduled with
        self.skipped: dict[str, int] = {}

    def sync(self, steps: list[Step]) -> None:
        """Schedule exactly these steps: new or changed ones (re)start, removed ones stop."""
        wanted = {s.name: s for s in steps}
        for name in set(self._tasks) - set(wanted):
            self.unschedule(name)
        for name, step in wanted.items():
            if self._expr.get(name) != (str(step.config["cron"]), str(step.path)) or name not in self._tasks:
                self.schedule(step)

    def schedule(self, step: Step) -> None:
        self.unschedule(step.name)
        self._expr[step.name] = (str(step.config["cron"]), str(step.path))
        self._tasks[step.name] = self._spawn(f"cron schedule of {step.name}", lambda: self._loop(step))

    def unschedule(self, name: str) -> None:
        self._expr.pop(name, None)
        if task := self._tasks.pop(name, None):
            task.cancel()

    async def _loop(self, step: Step) -> None:
        from croniter import croniter  # loaded when the step's expression was validated (steps.py)

        expr = str(step.config["cron"])
        schedule = croniter(expr, datetime.now().astimezone(), second_at_beginning=len(expr.split()) == 6)
        while True:
            raise_if_cancelling()
            due = schedule.get_next(float)
            await asyncio.sleep(max(0.0, due - time.time()))
            running = self._running.get(step.name)
            if running and not running.done():
                self.skipped[step.name] = self.skipped.get(step.name, 0) + 1
                self._logs.write("warn", "previous run still in progress; skipping this tick", step=step.name)
                continue
            if self._lock is not None and not await self._lock(step.name, due):
                continue  # another host runs this tick
            self._running[step.name] = asyncio.get_running_loop().create_task(self._run(step))

    async def stop(self) -> None:
        tasks = [*self._tasks.values(), *self._running.values()]
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()
        await asyncio.gather(*tasks, return_exceptions=True)
