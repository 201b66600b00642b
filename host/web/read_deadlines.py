"""How long a client may take to send a request: its head within `header_timeout` seconds (of the connection
opening, or of the head's first byte on a kept-alive connection), its body within `body_timeout` seconds of
the head. Without them a client that sends slowly, or nothing at all (slowloris), holds a connection, and a
file descriptor of the host, for as long as it likes: enough of them and no one else is served.

One sweep per event loop looks at every connection a few times per timeout, instead of a timer made and
cancelled per request (a request only notes when its phase began): a late client is cut up to a quarter of
the timeout (at most 1 s) after its deadline, never before. While the host itself holds a body back (reading
paused: the app has not taken what it has), the client's clock is stopped.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

IDLE, HEAD, BODY = 0, 1, 2  # what a connection waits for from its client: nothing the host times, a head, a body


class Reading(Protocol):
    """A connection as the sweep sees it (the HTTP protocol object)."""

    read_phase: int
    read_since: float  # loop time the phase began

    def read_paused(self) -> bool: ...  # the host, not the client, holds the request back

    def read_timed_out(self, phase: int, limit: float) -> None: ...


class ReadDeadlines:
    def __init__(self, loop: asyncio.AbstractEventLoop, header_timeout: float, body_timeout: float) -> None:
        self._loop = loop
        self._limits = {HEAD: header_timeout, BODY: body_timeout}
        self._every = min(1.0, max(0.05, min(header_timeout, body_timeout) / 4))
        self._watched: set[Reading] = set()
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, conn: Reading) -> None:
        self._watched.add(conn)
        if self._timer is None:
            self._timer = self._loop.call_later(self._every, self._sweep)

    def forget(self, conn: Reading) -> None:
        self._watched.discard(conn)

    def _sweep(self) -> None:
        now = self._loop.time()
        late: list[tuple[Reading, int, float]] = []
        for conn in self._watched:
            phase = conn.read_phase
            if phase == IDLE:
                continue
            if conn.read_paused():
                conn.read_since = now
            elif now - conn.read_since > (limit := self._limits[phase]):
                late.append((conn, phase, limit))
        for conn, phase, limit in late:  # each closes its connection, which forgets it: not while iterating
            conn.read_phase = IDLE
            conn.read_timed_out(phase, limit)
        # an idle host (no connections) has no timer running
        self._timer = self._loop.call_later(self._every, self._sweep) if self._watched else None
