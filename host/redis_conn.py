"""The one Redis connection pool a host shares between its Redis backends (queue, state, streams, cron),
and the key naming they all follow.

Every key starts with the configured prefix (`redis_prefix`, default `steppe:`), so several apps (or
test runs) can share one Redis. Names taken from users (groups, keys, streams, steps) are embedded with
their byte length in front, so `a:b` + `c` and `a` + `b:c` can never name the same key.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from .redis_lane import RedisLane, usable

if TYPE_CHECKING:
    from .health import Health
    from .settings import Settings

HEALTH_KEY = "redis"


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
        # the hot paths' connection (queue takes and batches, state get/set): see redis_lane for why
        self.lane: RedisLane | None = RedisLane(url) if usable(url) else None
        self._batch: list[tuple[Any, list[Any], list[Any], asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.health: Health | None = None  # the host's, told when Redis stops or starts answering

    def answered(self) -> None:
        if self.health is not None:
            self.health.report(HEALTH_KEY, "ok", "")

    def unreachable(self, what: str) -> None:
        if self.health is not None:
            self.health.report(HEALTH_KEY, "failing", f"Redis is not answering: {what}")

    def where(self) -> str:
        """The Redis address for messages: host, port and db, never a password."""
        kw = self.client.connection_pool.connection_kwargs
        return f"{kw.get('host', '?')}:{kw.get('port', '?')}/{kw.get('db', 0)}"

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def script(self, source: str) -> Any:
        """A Lua script, sent once and then called by its SHA (redis-py reloads it after a Redis restart)."""
        return self.client.register_script(source)

    async def run(self, script: Any, keys: list[Any], args: list[Any]) -> Any:
        """Run a script now, on the lane when there is one."""
        if self.lane is not None:
            return await self.lane.evalsha(script, keys, args)
        return await script(keys=keys, args=args)

    async def command(self, *args: Any) -> Any:
        """One plain command (replies as bytes), on the lane when there is one."""
        if self.lane is not None:
            return await self.lane.call(*args)
        return await self.client.execute_command(*args)

    async def batched(self, script: Any, keys: list[Any], args: list[Any]) -> Any:
        """Run a script in the next batch: the calls made in one turn of the event loop go out as one
        pipeline on one connection, in call order (a burst of puts keeps its order and costs one round
        trip), and the next batch waits for this one (so batches cannot overtake each other)."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._batch.append((script, keys, args, fut))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        return await fut

    async def _flush(self) -> None:
        while self._batch:
            batch, self._batch = self._batch, []
            for _ in range(2):  # once more after a Redis restart emptied its script cache
                try:
                    results = await self._send_batch(batch)
                except Exception as e:  # the connection failed: every caller of the batch hears it
                    for *_, fut in batch:
                        if not fut.done():
                            fut.set_exception(e)
                    break
                missing = [item for item, res in zip(batch, results, strict=True) if isinstance(res, NoScriptError)]
                for (*_, fut), res in zip(batch, results, strict=True):
                    if fut.done() or isinstance(res, NoScriptError):
                        continue
                    if isinstance(res, Exception):
                        fut.set_exception(res)
                    else:
                        fut.set_result(res)
                if not missing:
                    break
                for script in {id(item[0]): item[0] for item in missing}.values():
                    sha = await self.command("SCRIPT", "LOAD", script.script)
                    script.sha = sha.decode() if isinstance(sha, bytes) else sha
                batch = missing
            for *_, fut in batch:
                if not fut.done():
                    fut.set_exception(RuntimeError("Redis lost the Steppe scripts twice in a row"))

    async def _send_batch(self, batch: list[tuple[Any, list[Any], list[Any], asyncio.Future[Any]]]) -> list[Any]:
        if self.lane is not None:
            return await self.lane.calls([("EVALSHA", script.sha, len(keys), *keys, *args)
                                          for script, keys, args, _fut in batch])
        async with self.client.pipeline(transaction=False) as pipe:
            for script, keys, args, _fut in batch:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            return list(await pipe.execute(raise_on_error=False))

    async def ping(self) -> bool:
        return bool(await self.client.ping())

    async def close(self) -> None:
        if self.lane is not None:
            self.lane.close()
        await self.client.aclose()


def open_redis(settings: Settings) -> RedisConn | None:
    """The host's Redis pool when any part of it is on Redis; None otherwise."""
    return RedisConn(settings.redis_url, settings.redis_prefix) if settings.uses_redis else None
