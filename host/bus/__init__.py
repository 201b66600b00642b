"""The event bus: accepted events become deliveries in the queue."""

from ..event import Event, new_event_id
from .base import EventBus

__all__ = ["Event", "EventBus", "new_event_id"]
