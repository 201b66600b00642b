"""The event bus: accepted events become deliveries in the queue."""

from .base import EventBus
from ..event import Event, new_event_id

__all__ = ["Event", "EventBus", "new_event_id"]
