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
from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    MasterDownError,
    NoPermissionError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .db import StorageError
from .redis_lane import RedisLane, usable

if TYPE_CHECKING:
    from .health import Health
    from .settings import Settings

HEALTH_KEY = "redis"
MEMORY_KEY = "redis.memory"
_MEMORY_CHECK = 1.0  # seconds between looks at Redis's memory while it refuses writes


def out_of_memory(e: BaseException) -> bool:
    """Redis refused a write because its used memory is past `maxmemory` (noeviction): its OOM error,
    also when a script's write was the one refused."""
    return isinstance(e, OutOfMemoryError) or (isinstance(e, RedisError) and str(e).startswith("OOM "))


def redis_storage_error(e: RedisError) -> StorageError | None:
    """The StorageError a Redis fault is to its callers (507 out of memory, 503 not answering or not
    writable); None for any other Redis error (a script's bug is a 500, as any bug)."""
    if out_of_memory(e):
        return StorageError("Redis refused the write: it is out of memory (its used memory is past maxmemory); "
                            "free memory in Redis or raise its maxmemory", 507, "StorageFull")
    if isinstance(e, (RedisConnectionError, RedisTimeoutError)):
        return StorageError(f"Redis is not answering: {e}", 503, "StorageUnavailable")
    if isinstance(e, (ReadOnlyError, MasterDownError, TryAgainError)):
        return StorageError(f"Redis cannot take writes now: {e}", 503, "StorageUnavailable")
    return None


def many(prelude: str, body: str) -> str:
    """The script running `body` once per item of a batch, in order, on the same KEYS: ARGV = n1, the n1
    arguments of item 1, n2, ...; it returns the list of the items' results (a body never returns nil).
    RedisConn.batched sends the consecutive calls of one script in a batch as one call of this: one
    script run in Redis instead of one per call (each run costs Redis ~10 µs before it does anything)."""
    return prelude + "local function one(ARGV)\n" + body + """end
local out, i = {}, 1
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  out[#out + 1] = one({unpack(ARGV, i + 1, i + n)})
  i = i + n + 1
end
return out
"""


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
        self._many: dict[int, Any] = {}  # id of a script -> its batch form
        self.health: Health | None = None  # the host's, told when Redis stops or starts answering
        self._memory_watch: asyncio.Task[None] | None = None

    def answered(self) -> None:
        if self.health is not None:
            self.health.report(HEALTH_KEY, "ok", "")

    def unreachable(self, what: str) -> None:
        if self.health is not None:
            self.health.report(HEALTH_KEY, "failing", f"Redis is not answering: {what}")

    def refused(self, e: BaseException) -> None:
        """Told of a Redis error: when Redis is out of memory, health says so until its used memory is
        back under maxmemory (looked at every second meanwhile: a write refused for memory says nothing
        about when the next one will pass)."""
        if not out_of_memory(e) or (self._memory_watch is not None and not self._memory_watch.done()):
            return
        if self.health is not None:
            self.health.report(MEMORY_KEY, "degraded", "Redis is out of memory (used memory past maxmemory): "
                               "emits, state and stream writes are refused with 507")
        self._memory_watch = asyncio.get_running_loop().create_task(self._watch_memory())

    async def _watch_memory(self) -> None:
        while True:
            await asyncio.sleep(_MEMORY_CHECK)
            try:
                info = await self.client.info("memory")
            except RedisError:
                continue
            limit = int(info.get("maxmemory", 0) or 0)
            if limit == 0 or int(info.get("used_memory", 0) or 0) <= limit:
                if self.health is not None:
                    self.health.report(MEMORY_KEY, "ok", "")
                return

    def where(self) -> str:
        """The Redis address for messages: host, port and db, never a password."""
        kw = self.client.connection_pool.connection_kwargs
        return f"{kw.get('host', '?')}:{kw.get('port', '?')}/{kw.get('db', 0)}"

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def script(self, source: str, many: str | None = None) -> Any:
        """A Lua script, sent once and then called by its SHA (loaded again after a Redis restart). `many`:
        its batch form (`many` above), used for consecutive calls of it in one batch."""
        script = self.client.register_script(source)
        if many is not None:
            self._many[id(script)] = self.client.register_script(many)
        return script

    async def run(self, script: Any, keys: list[Any], args: list[Any]) -> Any:
        """Run a script now, on the lane when there is one."""
        try:
            if self.lane is not None:
                return await self.lane.evalsha(script, keys, args)
            return await script(keys=keys, args=args)
        except RedisError as e:
            self.refused(e)
            raise

    async def command(self, *args: Any) -> Any:
        """One plain command (replies as bytes), on the lane when there is one."""
        try:
            if self.lane is not None:
                return await self.lane.call(*args)
            return await self.client.execute_command(*args)
        except RedisError as e:
            self.refused(e)
            raise

    async def batched(self, script: Any, keys: list[Any], args: list[Any]) -> Any:
        """Run a script in the next batch: the calls made in one turn of the event loop go out as one
        pipeline on one connection, the calls of each script in call order (a burst of puts keeps its order
        and costs one round trip; see _send_batch), and the next batch waits for this one (so batches
        cannot overtake each other)."""
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
                        self.refused(res)
                        fut.set_exception(res)
                    else:
                        fut.set_result(res)
                if not missing:
                    break
                scripts = {id(item[0]): item[0] for item in missing}
                for script in [*scripts.values(), *(self._many[k] for k in scripts if k in self._many)]:
                    sha = await self.command("SCRIPT", "LOAD", script.script)
                    script.sha = sha.decode() if isinstance(sha, bytes) else sha
                batch = missing
            for *_, fut in batch:
                if not fut.done():
                    fut.set_exception(RuntimeError("Redis lost the Steppe scripts twice in a row"))

    async def _send_batch(self, batch: list[tuple[Any, list[Any], list[Any], asyncio.Future[Any]]]) -> list[Any]:
        """The result (or exception) of each call of the batch. The calls of a script that has a batch form
        go out as one call of that form per set of KEYS, in their call order, placed where the first of them
        was. Calls of different scripts may so run in another order than they were made: they were all made
        before any of them answered, so none of their callers can have counted on the other's effect
        (the puts and sets of a busy turn interleave with acks; kept apart they would be runs of one)."""
        groups: dict[tuple[int, tuple[Any, ...]], list[int]] = {}
        order: list[list[int]] = []  # per call sent: the positions in `batch` it runs
        for i, (script, keys, _, _) in enumerate(batch):
            if id(script) not in self._many:
                order.append([i])
                continue
            group = groups.get(k := (id(script), tuple(keys)))
            if group is None:
                group = groups[k] = []
                order.append(group)
            group.append(i)
        calls: list[tuple[Any, list[Any], list[Any]]] = []
        for positions in order:
            script, keys, args, _ = batch[positions[0]]
            if len(positions) == 1:
                calls.append((script, keys, args))
                continue
            flat: list[Any] = []
            for i in positions:
                item_args = batch[i][2]
                flat.append(len(item_args))
                flat += item_args
            calls.append((self._many[id(script)], keys, flat))
        if self.lane is not None:
            replies = await self.lane.calls([("EVALSHA", script.sha, len(keys), *keys, *args)
                                             for script, keys, args in calls])
        else:
            async with self.client.pipeline(transaction=False) as pipe:
                for script, keys, args in calls:
                    pipe.evalsha(script.sha, len(keys), *keys, *args)
                replies = list(await pipe.execute(raise_on_error=False))
        results: list[Any] = [None] * len(batch)
        for positions, reply in zip(order, replies, strict=True):
            if len(positions) == 1:
                results[positions[0]] = reply
            elif isinstance(reply, Exception):  # the whole group failed (NOSCRIPT: each item is sent again)
                for i in positions:
                    results[i] = reply
            else:
                for i, one in zip(positions, reply, strict=True):
                    results[i] = one
        return results

    async def ping(self) -> bool:
        return bool(await self.client.ping())

    async def check(self) -> None:
        """Ping Redis at start; raises RuntimeError with one line saying what is wrong and what to change
        (its address and redis-py's reason, never the password)."""
        try:
            await self.ping()
            if self.lane is not None:  # its own connection, AUTH and SELECT: redis-py lets some refusals pass
                await self.lane.call("PING")
        except (AuthenticationError, AuthorizationError, NoPermissionError) as e:
            raise RuntimeError(f"Redis at {self.where()} refused the credentials in redis_url ({type(e).__name__}: "
                               f"{e}); put its password in redis_url (redis://:PASSWORD@host:port/db, or "
                               "redis://USER:PASSWORD@... for an ACL user)") from None
        except (RedisConnectionError, RedisTimeoutError, OSError) as e:
            raise RuntimeError(f"Redis at {self.where()} did not answer ({type(e).__name__}: {e}); start it or "
                               "fix redis_url") from None
        except RedisError as e:
            raise RuntimeError(f"Redis at {self.where()} refused the connection ({type(e).__name__}: {e}); "
                               "fix redis_url") from None

    async def close(self) -> None:
        if self._memory_watch is not None:
            self._memory_watch.cancel()
        if self.lane is not None:
            self.lane.close()
        await self.client.aclose()


def open_redis(settings: Settings) -> RedisConn | None:
    """The host's Redis pool when any part of it is on Redis; None otherwise."""
    return RedisConn(settings.redis_url, settings.redis_prefix) if settings.uses_redis else None
