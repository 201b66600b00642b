"""The event bus: routes each accepted event by topic to one delivery per subscribing step, in a queue
(the queue backend decides durability; see steppe.queue)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from fnmatch import fnmatchcase

from ..event import Event
from ..queue.base import Queue, Subscription


class EventBus:
    def __init__(self, queue: Queue, dedupe_window: float = 86400.0) -> None:
        self.queue = queue
        self.dedupe_window = dedupe_window
        self.routes: dict[str, list[Subscription]] = {}
        self.patterns: dict[str, list[Subscription]] = {}  # topic patterns (`pr-*`, `*`) and their subscribers
        self.unrouted: deque[Event] = deque(maxlen=1000)  # events no step subscribes to, for the Workbench
        # told when deliveries become due: after how long, and for which steps
        self.on_accepted: Callable[[float, Iterable[str]], None] = lambda delay, steps: None

    def set_routes(self, routes: dict[str, list[Subscription]]) -> None:
        """Subscriptions by topic; a topic with `*` or `?` is a pattern (`pr-*`, `*`) matching many."""
        self.routes = {topic: list(r) for topic, r in routes.items() if not is_pattern(topic)}
        self.patterns = {topic: list(r) for topic, r in routes.items() if is_pattern(topic)}

    def routes_for(self, event: Event) -> list[Subscription]:
        """Exact subscribers, then pattern subscribers, each step once. A step subscribed only through
        a pattern never receives its own emissions (a `*` step emitting would otherwise feed itself)."""
        routes = list(self.routes.get(event.topic, []))
        if self.patterns:
            seen = {s.step for s in routes}
            for pattern, subs in self.patterns.items():
                if fnmatchcase(event.topic, pattern):
                    for s in subs:
                        if s.step not in seen and s.step != event.emitted_by:
                            routes.append(s)
                            seen.add(s.step)
        return routes

    async def publish(self, event: Event, dedupe: bool = False) -> int | None:
        """Accept an event: once this returns, its deliveries are in the queue (on disk for a durable one).
        Returns how many deliveries were made (0: nobody subscribes; kept as unrouted), or None when
        `dedupe` is set and an event with this id was accepted within the dedupe window."""
        routes = self.routes_for(event)
        if not routes:
            # an id is taken even when nobody subscribes yet: the queue records it with no delivery, so
            # the same emit again is a duplicate, not a second unrouted event replayed twice later
            if dedupe and not await self.queue.put(event, [], self.dedupe_window):
                return None
            self.unrouted.append(event)
            return 0
        if not await self.queue.put(event, routes, self.dedupe_window if dedupe else None):
            return None
        for delay in {s.delay for s in routes}:
            self.on_accepted(delay, [s.step for s in routes if s.delay == delay])
        return len(routes)


def is_pattern(topic: str) -> bool:
    return "*" in topic or "?" in topic
