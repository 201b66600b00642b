"""One multiplexed Redis connection for the hot paths (queue takes and batches, state get/set).

Why not redis-py's client for these: each of its commands checks a connection out of the pool, wraps the
call in retry and timeout helpers, packs the arguments one by one and checks it back in: a sequential GET
took 91-112 µs through the client against 14-25 µs on a lane, in one sitting on the 2-core bench VM
(bench R1's state calls are chains of such commands; a delivery costs three). A lane writes every
command straight onto one connection, with hiredis packing the commands and parsing the replies, and
matches replies to callers in order (Redis answers the commands of one connection in the order they
were sent). Commands issued in one turn of the event loop go out in one write.

The lane is opened lazily and again after its connection drops; a caller whose command was in flight
when it dropped gets redis-py's ConnectionError (a RedisError, as from the client), so callers handle
one family of errors. Everything else (pub/sub, WATCH/MULTI, admin reads, TLS URLs) stays on redis-py.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any, cast

import hiredis
from redis._parsers.base import BaseParser
from redis.asyncio.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError

from .framing import TurnWriter


def usable(url: str) -> bool:
    """Whether a lane can talk to this URL (plain TCP or a Unix socket; TLS stays on redis-py)."""
    return "connection_class" not in parse_url(url) or url.startswith("unix://")


class _Wire(asyncio.Protocol):
    """The connection: hiredis turns the bytes that arrive into replies, each one resolving the oldest
    caller still waiting."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.reader = hiredis.Reader()
        self.waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.closed: Exception | None = None
        self.out = TurnWriter(self, self.loop)  # the commands of one loop turn, batched

    def send(self, args: tuple[Any, ...]) -> asyncio.Future[Any]:
        packed = hiredis.pack_command(args)
        fut: asyncio.Future[Any] = self.loop.create_future()
        if self.closed is not None:
            fut.set_exception(self.closed)
            return fut
        self.waiting.append(fut)
        self.out.write(packed)
        return fut

    def write(self, data: bytes) -> None:
        """TurnWriter's output: nothing goes to a connection that has failed (its callers already know)."""
        if self.transport is not None and self.closed is None:
            self.transport.write(data)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio and uvloop both set TCP_NODELAY on their TCP transports
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        try:
            while (reply := self.reader.gets()) is not False:
                fut = self.waiting.popleft()
                if fut.done():  # its caller was cancelled: the reply is dropped, the order kept
                    continue
                if isinstance(reply, hiredis.ReplyError):
                    fut.set_exception(BaseParser.parse_error(str(reply)))
                else:
                    fut.set_result(reply)
        except (hiredis.ProtocolError, IndexError) as e:  # garbled stream: nothing later can be matched
            self.fail(RedisConnectionError(f"Redis reply stream broken: {e}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(RedisConnectionError(f"Redis connection lost: {exc or 'closed by the server'}"))

    def fail(self, error: Exception) -> None:
        if self.closed is None:
            self.closed = error
        if self.transport is not None:
            self.transport.close()
        while self.waiting:
            fut = self.waiting.popleft()
            if not fut.done():
                fut.set_exception(error)


class RedisLane:
    """Commands on one connection to the Redis at `url`, shared by every caller of the event loop."""

    def __init__(self, url: str) -> None:
        self._kw = parse_url(url)
        self._wire: _Wire | None = None
        self._opening: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    def _current(self) -> _Wire | None:
        """The open connection of this event loop (a test or tool may run several loops in turn)."""
        wire = self._wire
        if wire is None or wire.closed is not None or wire.loop is not asyncio.get_running_loop():
            return None
        return wire

    async def _open(self) -> _Wire:
        loop = asyncio.get_running_loop()
        if self._opening is None or self._opening[0] is not loop:
            self._opening = (loop, asyncio.Lock())
        async with self._opening[1]:
            if (current := self._current()) is not None:
                return current
            try:
                if "path" in self._kw:
                    _, wire = await loop.create_unix_connection(_Wire, self._kw["path"])
                else:
                    _, wire = await loop.create_connection(_Wire, self._kw.get("host", "localhost"),
                                                           self._kw.get("port", 6379))
            except OSError as e:
                raise RedisConnectionError(f"cannot connect to Redis: {e}") from e
            self._wire = wire
            hello: list[tuple[Any, ...]] = []
            if self._kw.get("password"):
                user = self._kw.get("username")
                hello.append(("AUTH", user, self._kw["password"]) if user else ("AUTH", self._kw["password"]))
            if self._kw.get("db"):
                hello.append(("SELECT", self._kw["db"]))
            try:
                await asyncio.gather(*[wire.send(args) for args in hello])
            except RedisError:
                wire.fail(RedisConnectionError("Redis refused the lane's AUTH or SELECT"))
                raise
            return wire

    async def call(self, *args: Any) -> Any:
        """One command; its reply as hiredis gives it (bytes, ints, lists, None)."""
        wire = self._current() or await self._open()
        return await wire.send(args)

    async def calls(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Several commands, written together, in order; each reply or the exception it raised."""
        wire = self._current() or await self._open()
        futs = [wire.send(args) for args in commands]
        return list(await asyncio.gather(*futs, return_exceptions=True))

    async def evalsha(self, script: Any, keys: list[Any], args: list[Any]) -> Any:
        """A registered script (redis-py's Script: sha and source) by its SHA, loaded again when Redis lost it."""
        try:
            return await self.call("EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:
            script.sha = await self.call("SCRIPT", "LOAD", script.script)
            if isinstance(script.sha, bytes):
                script.sha = script.sha.decode()
            return await self.call("EVALSHA", script.sha, len(keys), *keys, *args)

    def close(self) -> None:
        if self._wire is not None:
            self._wire.fail(RedisConnectionError("the lane was closed"))
            self._wire = None
