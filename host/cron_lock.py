"""Cron across hosts: every host of an app schedules every cron step, and before firing a tick each asks
Redis for that tick's lock (`SET <prefix>cron:<step>:<tick> NX PX`); the one host that gets it runs
the tick, the others let it pass. Hosts agree on tick times because they compute them from the same
cron expression on clocks that are in sync (keep NTP on: a host whose clock is off by more than a
tick apart could run a tick twice or miss one)."""

from __future__ import annotations

import logging
import os
import socket

from .redis_conn import RedisConn, part

log = logging.getLogger("steppe.cron")

# a tick's lock outlives any skew between the hosts' clocks, then expires on its own
HOLD_MS = 10 * 60 * 1000


class RedisCronLock:
    def __init__(self, conn: RedisConn) -> None:
        self.conn, self.owner = conn, f"{socket.gethostname()}:{os.getpid()}"  # who ran a tick, for people

    async def __call__(self, step: str, tick: float) -> bool:
        """True for the one host that should run `step`'s tick due at `tick` (epoch seconds). When Redis
        cannot be asked, no host runs it: a tick skipped is safer than a tick run by every host."""
        key = self.conn.key("cron", part(step), str(round(tick * 1000)))
        try:
            return bool(await self.conn.client.set(key, self.owner, nx=True, px=HOLD_MS))
        except Exception as e:
            log.warning("cron tick of %s skipped: Redis did not answer (%s)", step, e)
            return False
