"""The delivery journal behind the bus: one delivery per subscribing step, leased while it runs, deleted
when acked, rescheduled when it fails, moved to the dead-letter store when it is exhausted.

One interface, one file per backend (`memory.py`, the testing tool; `sqlite.py`, the embedded default, with
its tables and statements in `sqlite_sql.py`; `redis.py`).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..event import Event


@dataclass(frozen=True)
class Subscription:
    """How one subscribing step receives an event."""

    step: str
    delay: float = 0.0  # queue.delaySeconds
    fifo: bool = False  # queue.type == "fifo": events sharing a messageGroupId run one at a time, in order


@dataclass
class Delivery:
    id: int
    step: str
    event: Event
    attempts: int  # attempts started so far, the running one included
    created_at: float
    last_error: str | None = None


@dataclass
class DeadLetter:
    id: int
    step: str
    event: Event | None  # None for a CorruptRecord, whose stored bytes are in `raw`
    attempts: int
    error: str
    stack: str
    first_at: float
    failed_at: float = field(default_factory=time.time)
    group: str | None = None  # the FIFO group it held, kept for replay
    raw: bytes | None = None  # the stored event as it is, when it cannot be decoded

    def as_dict(self) -> dict[str, Any]:
        out = {"id": self.id, "step": self.step, "event": self.event.as_dict() if self.event else None,
               "attempts": self.attempts, "error": self.error, "stack": self.stack, "firstAt": self.first_at,
               "failedAt": self.failed_at}
        if self.raw is not None:
            out["raw"] = self.raw.decode("utf-8", "backslashreplace")  # every byte kept, readable
        return out


class Queue(ABC):
    """Deliveries are durable once `put` returns (for a durable backend). A leased delivery that is neither
    acked, retried nor buried when the host stops is handed out again after `recover`."""

    @abstractmethod
    async def put(self, event: Event, routes: list[Subscription], dedupe_window: float | None = None) -> bool:
        """Record one delivery per route. With `dedupe_window`, an event whose id was put within that many
        seconds is ignored: returns False."""

    @abstractmethod
    async def take(self, step: str, limit: int, fifo: bool) -> list[Delivery]:
        """Lease up to `limit` due deliveries of `step`, oldest first; for FIFO only each group's head."""

    @abstractmethod
    async def ack(self, delivery: Delivery) -> None: ...

    @abstractmethod
    async def retry(self, delivery: Delivery, delay: float, error: str) -> None:
        """Release the lease; the delivery is due again after `delay` seconds."""

    @abstractmethod
    async def bury(self, delivery: Delivery, error: str, stack: str = "") -> None:
        """Move to the dead-letter store."""

    @abstractmethod
    async def recover(self) -> int:
        """At start: release every lease left by a previous run; returns how many."""

    @abstractmethod
    async def release(self, ids: list[int]) -> int:
        """Return these leased deliveries to the queue, due now, attempts kept (their outcome could not be
        recorded); returns how many."""

    @abstractmethod
    async def counts(self) -> dict[str, int]:
        """{"ready", "leased", "dead"}"""

    @abstractmethod
    async def waiting_elsewhere(self, steps: set[str]) -> dict[str, int]:
        """Deliveries not yet acked (ready, delayed or leased) of steps other than `steps`, by step: run at
        start and after a reload, to tell of steps the project no longer has (usually none: cheap then)."""

    @abstractmethod
    async def oldest_due(self, steps: list[str]) -> float:
        """Seconds the first-queued due delivery of any of these steps, not yet leased, has been due (0 when
        none): cheap, one index probe per step, for the backlog check in health."""

    @abstractmethod
    async def dead(self, step: str | None = None, ids: list[int] | None = None) -> list[DeadLetter]: ...

    @abstractmethod
    async def replay(self, ids: list[int]) -> int:
        """Re-enqueue dead letters with fresh attempts; returns how many."""

    @abstractmethod
    async def drop(self, ids: list[int]) -> int: ...

    async def watch(self, wake: Callable[[], None]) -> None:
        """Call `wake` when another process made deliveries due (a queue shared by several hosts); a
        one-process queue needs nothing: the bus wakes the worker itself."""
        return None

    def set_limits(self, concurrency: dict[str, int]) -> None:
        """Each step's concurrency cap (queue.concurrency). A queue shared by several hosts enforces them
        across all of them in `take`; a one-process queue needs nothing, the worker counts its own."""
        return None

    async def close(self) -> None:
        return None
