"""The storage watch: turns what the database files know about themselves into health and log lines, and
looks at them on a timer (a supervised task): files deleted or replaced under the host, writes that fail
and start working again (probed while they fail), and the queue's backlog."""

from __future__ import annotations

import asyncio
import logging

from .db import DbFile, StorageError
from .health import Health
from .queue import Queue

log = logging.getLogger("steppe.storage")


class StorageWatch:
    def __init__(self, health: Health, queue: Queue, files: list[DbFile], *, interval: float = 2.0,
                 backlog_age_warn: float = 60.0) -> None:
        self.health, self.queue, self.files = health, queue, files
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
            waiting, age = await self.queue.backlog()
        except StorageError:
            return
        if waiting and age > self.backlog_age_warn:
            self.health.report("queue:backlog", "degraded",
                               f"{waiting} delivery(ies) waiting; the oldest has been due for {age:.0f}s "
                               f"(over backlog_age_warn, {self.backlog_age_warn:g}s)")
        else:
            self.health.clear("queue:backlog")

    async def run(self) -> None:
        while True:
            await self.check_once()
            await asyncio.sleep(self.interval)
