"""The storage watch: turns what the database files know about themselves into health and log lines, and
looks at them on a timer (a supervised task): files deleted or replaced under the host, writes that fail
and start working again (probed while they fail), and the queue's backlog."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from .db import DbFile, StorageError
from .health import Health
from .queue import Queue
from .tasks import raise_if_cancelling

log = logging.getLogger("steppe.storage")


class StorageWatch:
    def __init__(self, health: Health, queue: Queue, files: list[DbFile], steps: Callable[[], list[str]], *,
                 interval: float = 2.0, backlog_age_warn: float = 60.0) -> None:
        self.health, self.queue, self.files = health, queue, files
        self.steps = steps  # the event steps being delivered (the worker's policies)
        self._counted: tuple[float, int] = (0.0, 0)  # (when, ready): counting scans the table, so not often
        self.interval = interval
        self.backlog_age_warn = backlog_age_warn  # seconds the oldest due delivery may wait before `degraded`
        for f in files:
            f.listeners.append(self._changed)

    def _changed(self, f: DbFile) -> None:
        key = f"storage:{f.label}"
        if f.lost is not None:
            rescued = f.rescue()
            kept = (f"what it held was copied to {rescued}; stop the host and move that copy to {f.path} to keep it"
                    if rescued else "no copy could be made")
            log.error(f"the {f.label} database changed under the running host: {f.lost} "
                      f"(files: {', '.join(f.files)}); it refuses further calls until restarted; {kept}")
            self.health.report(key, "failing", f"the {f.label} database file was deleted or replaced while "
                               "running; writes are refused until the host restarts")
        elif f.failure is not None:
            log.error(f"{f.failure} ({f.path}); calls that write answer {f.failure.status} until it works again")
            self.health.report(key, "failing", str(f.failure))
        else:
            log.info(f"the {f.label} database accepts writes again")
            self.health.clear(key)

    async def check_once(self) -> None:
        for f in self.files:
            if f.check() and f.failure is not None:
                try:
                    f.probe()
                except StorageError:
                    pass  # still failing: already reported
        try:
            age = await self.queue.oldest_due(self.steps())
            if age > self.backlog_age_warn:
                now = time.monotonic()
                if now - self._counted[0] > 30 * self.interval or not self._counted[1]:
                    self._counted = (now, (await self.queue.counts())["ready"])
                self.health.report("queue:backlog", "degraded",
                                   f"{self._counted[1]} delivery(ies) queued; the oldest due one has waited "
                                   f"{age:.0f}s (over backlog_age_warn, {self.backlog_age_warn:g}s)")
            else:
                self._counted = (0.0, 0)
                self.health.clear("queue:backlog")
        except StorageError:
            return

    async def run(self) -> None:
        while True:
            raise_if_cancelling()
            await self.check_once()
            await asyncio.sleep(self.interval)
