"""A fan-out of what happens now (log records, invocations starting and ending, state changes) to the
Workbench pages that listen (`/__steppe/api/live`, server-sent events).

Each listener has a bounded queue: a page that stops reading loses its oldest news, never slows the host.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson


class LiveFeed:
    END = b""  # put in a listener's queue: its stream ends (the host is stopping)

    def __init__(self, backlog: int = 2000) -> None:
        self._listeners: set[asyncio.Queue[bytes]] = set()
        self._backlog = backlog
        self.closed = False

    @property
    def listening(self) -> bool:
        return bool(self._listeners)

    def publish(self, kind: str, data: Any) -> None:
        if not self._listeners:
            return
        message = b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data, default=str) + b"\n\n"
        for queue in self._listeners:
            if queue.full():
                queue.get_nowait()  # drop the oldest: a slow page must not hold the host's memory
            queue.put_nowait(message)

    def listen(self) -> asyncio.Queue[bytes]:
        queue: asyncio.Queue[bytes] = asyncio.Queue(self._backlog)
        if self.closed:
            queue.put_nowait(self.END)
        self._listeners.add(queue)
        return queue

    def close(self) -> None:
        """End every listener's stream: the HTTP server waits for open responses before it stops, and a
        live feed never ends by itself."""
        self.closed = True
        for queue in self._listeners:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(self.END)

    def leave(self, queue: asyncio.Queue[bytes]) -> None:
        self._listeners.discard(queue)
