"""Wrong admin tokens per client address: past a few in a minute, that address is refused for the rest of it.

A token is compared in constant time, but a short one (the start-up log warns below 16 characters) could
still be guessed by trying; this makes guessing cost a minute per ten tries. Only requests that present a
token (a bearer header, the cookie, the login query) count: a browser opening the Workbench before it has
logged in is not guessing. Clients behind one proxy share its address, and so share its lockout.
"""

from __future__ import annotations

import time

TRIES = 10  # wrong tokens an address may send per window
WINDOW = 60.0  # seconds
_ADDRESSES_MAX = 10_000  # addresses remembered at once: a flood of new ones forgets the oldest windows first


class Lockout:
    def __init__(self, tries: int = TRIES, window: float = WINDOW) -> None:
        self.tries, self.window = tries, window
        self._failed: dict[str, tuple[float, int]] = {}  # address -> (its window's start, wrong tokens in it)

    def wait(self, address: str, now: float | None = None) -> float:
        """Seconds until `address` may try again (0: it may now)."""
        entry = self._failed.get(address)
        if entry is None:
            return 0.0
        start, count = entry
        left = start + self.window - (time.monotonic() if now is None else now)
        if left <= 0:
            del self._failed[address]
            return 0.0
        return left if count >= self.tries else 0.0

    def failed(self, address: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        start, count = self._failed.pop(address, (now, 0))  # popped: re-inserted last, the dict stays in age order
        if start + self.window <= now:
            start, count = now, 0
        self._failed[address] = (start, count + 1)
        while len(self._failed) > _ADDRESSES_MAX:
            del self._failed[next(iter(self._failed))]
