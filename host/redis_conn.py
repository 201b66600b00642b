"""The one Redis connection pool a host shares between its Redis backends (queue, state, streams, cron),
and the key naming they all follow.

Every key starts with the configured prefix (`redis_prefix`, default `steppe:`), so several apps (or
test runs) can share one Redis. Names taken from users (groups, keys, streams, steps) are embedded with
their byte length in front, so `a:b` + `c` and `a` + `b:c` can never name the same key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis

if TYPE_CHECKING:
    from .settings import Settings


def part(name: str) -> str:
    """A user-chosen name as one unambiguous key segment (its length in UTF-8 bytes, as Lua counts)."""
    return f"{len(name.encode())}:{name}"


class RedisConn:
    """A redis-py asyncio client over a connection pool, plus the key prefix of this app."""

    def __init__(self, url: str, prefix: str = "steppe:", max_connections: int = 64) -> None:
        self.url, self.prefix = url, prefix
        # a blocking pool: past `max_connections` callers wait for a free connection instead of failing
        pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=30,
                                                        health_check_interval=30)
        self.client: aioredis.Redis = aioredis.Redis(connection_pool=pool)
        self._users = 0

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def script(self, source: str) -> Any:
        """A Lua script, sent once and then called by its SHA (redis-py reloads it after a Redis restart)."""
        return self.client.register_script(source)

    async def ping(self) -> bool:
        return bool(await self.client.ping())

    async def close(self) -> None:
        await self.client.aclose()


def open_redis(settings: Settings) -> RedisConn | None:
    """The host's Redis pool when any part of it is on Redis; None otherwise."""
    return RedisConn(settings.redis_url, settings.redis_prefix) if settings.uses_redis else None
