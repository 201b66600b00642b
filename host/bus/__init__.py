"""The event bus: one interface, one file per backend."""

from .base import Deliver, Event, EventBus, new_event_id
from .memory import MemoryBus

__all__ = ["Deliver", "Event", "EventBus", "MemoryBus", "new_event_id", "open_bus"]


def open_bus(kind: str) -> EventBus:
    if kind == "memory":
        return MemoryBus()
    raise ValueError(f"unknown bus {kind!r} (available: memory)")
