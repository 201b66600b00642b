"""What every bus backend provides: accept an event, route it to each subscribing step, deliver it."""

from __future__ import annotations

import time
import uuid
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any


def new_event_id() -> str:
    return uuid.uuid4().hex


@dataclass
class Event:
    topic: str
    data: Any
    trace_id: str
    flows: list[str] = field(default_factory=list)
    message_group_id: str | None = None
    id: str = field(default_factory=new_event_id)
    emitted_by: str | None = None
    emitted_at: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "topic": self.topic, "data": self.data, "traceId": self.trace_id,
                "flows": self.flows, "messageGroupId": self.message_group_id, "emittedBy": self.emitted_by,
                "emittedAt": self.emitted_at}


# Delivers one event to one step (by name); raises when the handler failed.
Deliver = Callable[[str, Event], Awaitable[None]]


@dataclass
class FailedDelivery:
    step: str
    event: Event
    reason: str
    at: float = field(default_factory=time.time)


class EventBus(ABC):
    """Routes by topic to subscribing step names. Backends decide how deliveries are kept and run."""

    def __init__(self) -> None:
        self.routes: dict[str, list[str]] = {}
        self.unrouted: deque[Event] = deque(maxlen=1000)  # events no step subscribes to, for the Workbench
        self.failed: deque[FailedDelivery] = deque(maxlen=1000)
        self._deliver: Deliver | None = None

    def set_routes(self, routes: dict[str, list[str]]) -> None:
        self.routes = {topic: list(steps) for topic, steps in routes.items()}

    def start(self, deliver: Deliver) -> None:
        self._deliver = deliver

    async def publish(self, event: Event) -> int:
        """Accept an event; returns how many deliveries were made (0: unrouted, kept for inspection)."""
        steps = self.routes.get(event.topic, [])
        if not steps:
            self.unrouted.append(event)
            return 0
        await self._enqueue(event, steps)
        return len(steps)

    def record_failure(self, step: str, event: Event, reason: str) -> None:
        self.failed.append(FailedDelivery(step, event, reason))

    @abstractmethod
    async def _enqueue(self, event: Event, steps: list[str]) -> None: ...

    @abstractmethod
    async def stop(self, grace: float = 5.0) -> None: ...

    @abstractmethod
    def pending(self) -> int:
        """Deliveries accepted but not finished."""
