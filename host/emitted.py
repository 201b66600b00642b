"""The last events emitted into the bus (by handlers, `steppe emit` or the admin API), kept in memory so
tests and tools can ask what a flow emitted (`GET /__steppe/emitted`)."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from .bus import Event


class EmittedLog:
    def __init__(self, keep: int = 2000) -> None:
        self.recent: deque[dict[str, Any]] = deque(maxlen=keep)

    def resize(self, keep: int) -> None:
        """How many to keep (0: none; each keeps its data alive, up to max_event bytes)."""
        self.recent = deque(self.recent, maxlen=max(0, keep))

    def record(self, event: Event, deliveries: int) -> None:
        if self.recent.maxlen == 0:
            return
        record = {"id": event.id, "topic": event.topic, "data": event.data, "traceId": event.trace_id,
                  "emittedBy": event.emitted_by, "deliveries": deliveries, "time": time.time()}
        if event.message_group_id is not None:
            record["messageGroupId"] = event.message_group_id
        self.recent.append(record)

    def query(self, *, topic: str | None = None, trace_id: str | None = None,
              limit: int = 200) -> list[dict[str, Any]]:
        rows = [r for r in self.recent
                if (topic is None or r["topic"] == topic) and (trace_id is None or r["traceId"] == trace_id)]
        return rows[-limit:]

    def clear(self) -> None:
        self.recent.clear()
