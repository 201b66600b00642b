"""The Redis queue: deliveries shared by every host of an app (backend = "redis" or bus = "redis").

One Redis stream per subscribing step (`q:<step>:s`) with one consumer group (`steppe`); every host
reads with XREADGROUP under a consumer name of its own, and an acked, retried or buried delivery is
XACKed and XDELed, so a stream holds exactly the ready and the leased deliveries of its step:

- leased = the group's pending entries. A host refreshes the idle time of the entries it is running
  (XCLAIM ... JUSTID to itself) every third of `lease`; a host that dies stops doing so, and after
  `lease` seconds any host reclaims them with XAUTOCLAIM and puts them back (the lost run counts as an
  attempt, as a crash does with SQLite).
- delayed deliveries (queue.delaySeconds, retries with backoff) wait in a sorted set by due time
  (`q:<step>:z`); every take first moves the due ones into the stream.
- FIFO groups: a hash (`q:<step>:o`) names the groups that own a delivery in flight (in the stream,
  leased or waiting for a retry); later deliveries of an owned group wait in that group's list
  (`q:<step>:w:<group>`) and enter the stream one at a time, when the one before is acked or buried. So a
  group runs one delivery at a time in put order across every host.
- concurrency caps are global: a take leases at most `cap - pending` entries, in the same Lua script.
- dead letters are a hash by delivery id (`q:dead`), read by `steppe dlq` through the admin API.
- dedupe: `q:seen:<event id>` set with NX and the window as its expiry.
- wake-ups: a put or replay publishes on `q:wake` (at most once per 50 ms), so idle hosts take new work
  at once instead of at their next poll.

Every state change is one Lua script, atomic across hosts; the puts, acks, retries and burials of one
turn of the event loop go out as one write (RedisConn.batched, on the host's lane), in call order, and
consecutive puts (or acks) of a batch run as one call of the script's batch form (redis_lua.many). A
delivery is a JSON record (id, FIFO group, attempts before this lease, creation time, last error, event).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from redis.exceptions import RedisError

from ..event import Event
from ..redis_conn import RedisConn, part
from ..tasks import raise_if_cancelling
from .base import DeadLetter, Delivery, Queue, Subscription
from .redis_lua import ACK, ACK_MANY, BURY, COUNTS, PUT, PUT_MANY, REAP, REPLAY, RETRY, TAKE, WAITING

log = logging.getLogger("steppe.queue.redis")
GROUP = "steppe"
FORGET_CONSUMERS_MS = 600_000  # a consumer name idle this long with nothing pending is deleted

@dataclass
class RedisDelivery(Delivery):
    entry: str = ""  # the stream entry this lease holds
    group: str = ""  # the FIFO group it owns ("" for none)


def _ms(t: float) -> str:
    return str(int(t * 1000))


def _tail(attempts: int, created_at: float, error: str | None, event: dict[str, Any]) -> bytes:
    """A record without its leading `{"id":N,"g":G` (the Lua side writes those)."""
    return (b',"a":' + str(attempts).encode() + b',"c":' + orjson.dumps(created_at) + b',"r":' + orjson.dumps(error)
            + b',"e":' + orjson.dumps(event) + b"}")


class RedisQueue(Queue):
    def __init__(self, conn: RedisConn, lease: float = 30.0, upkeep: bool = True) -> None:
        self.conn, self.lease, self._keeps_leases = conn, lease, upkeep
        self._r = conn.client
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._ids, self._steps, self._dead = conn.key("q", "ids"), conn.key("q", "steps"), conn.key("q", "dead")
        self._wake_keys = [conn.key("q", "wake", "flag"), conn.key("q", "wake")]
        self._put, self._take = conn.script(PUT, many=PUT_MANY), conn.script(TAKE)
        self._ack = conn.script(ACK, many=ACK_MANY)
        self._retry, self._bury, self._replay = conn.script(RETRY), conn.script(BURY), conn.script(REPLAY)
        self._reap, self._counts, self._waiting = conn.script(REAP), conn.script(COUNTS), conn.script(WAITING)
        self._caps: dict[str, int] = {}
        self._bases: dict[str, str] = {}
        self._leased: dict[tuple[str, str], RedisDelivery] = {}  # (step, entry) -> what this host runs
        self._upkeep: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None

    def base(self, step: str) -> str:
        if (known := self._bases.get(step)) is None:  # asked for on every put, take and ack: built once
            known = self._bases[step] = self.conn.key("q", part(step)) + ":"
        return known

    def set_limits(self, concurrency: dict[str, int]) -> None:
        self._caps = dict(concurrency)

    # --- the interface
    async def put(self, event: Event, routes: list[Subscription], dedupe_window: float | None = None) -> bool:
        now = time.time()
        ev = event.as_dict()
        args: list[Any] = ["" if dedupe_window is None else self.conn.key("q", "seen", event.id),
                           max(1, int(dedupe_window * 1000)) if dedupe_window is not None else 0,
                           _ms(now), _tail(0, now, None, ev), len(routes)]
        for r in routes:
            group = event.message_group_id if r.fifo and event.message_group_id else ""
            args += [r.step, self.base(r.step), _ms(now + r.delay), group, orjson.dumps(group or None)]
        return bool(await self.conn.batched(self._put, [self._ids, self._steps, *self._wake_keys], args))

    async def take(self, step: str, limit: int, fifo: bool) -> list[Delivery]:
        self._start_upkeep()
        cap = self._caps.get(step, -1)
        try:
            entries = await self.conn.run(self._take, [],
                                          [self.base(step), self.consumer, limit, cap, _ms(time.time())])
        except (RedisError, OSError) as e:  # the worker polls again: nothing is taken while Redis is away
            self.conn.unreachable("events are neither accepted nor delivered")
            log.warning("could not take deliveries of %s from Redis: %s", step, e)
            return []
        self.conn.answered()
        taken: list[Delivery] = []
        for entry_id, fields in entries:
            f = dict(zip(fields[::2], fields[1::2], strict=True))
            rec = orjson.loads(f[b"r"])
            attempts = rec["a"] + int(f.get(b"l", 0)) + 1
            d = RedisDelivery(rec["id"], step, Event.from_dict(rec["e"]), attempts, rec["c"], rec["r"],
                              entry=entry_id.decode(), group=rec["g"] or "")
            self._leased[(step, d.entry)] = d
            taken.append(d)
        return taken

    def _held(self, delivery: Delivery) -> RedisDelivery:
        if not isinstance(delivery, RedisDelivery):
            raise TypeError("not a delivery taken from this queue")
        self._leased.pop((delivery.step, delivery.entry), None)
        return delivery

    async def ack(self, delivery: Delivery) -> None:
        d = self._held(delivery)
        await self.conn.batched(self._ack, [], [self.base(d.step), d.entry, d.group, _ms(time.time())])

    async def retry(self, delivery: Delivery, delay: float, error: str) -> None:
        delivery.last_error = error
        await self._put_back(self._held(delivery), delay)

    async def _put_back(self, d: RedisDelivery, delay: float) -> None:
        error, now = d.last_error, time.time()
        record = (b'{"id":' + str(d.id).encode() + b',"g":' + orjson.dumps(d.group or None)
                  + _tail(d.attempts, d.created_at, error, d.event.as_dict()))
        await self.conn.batched(self._retry, [], [self.base(d.step), d.entry, record, _ms(now + delay), _ms(now)])

    async def bury(self, delivery: Delivery, error: str, stack: str = "") -> None:
        d = self._held(delivery)
        now = time.time()
        letter = orjson.dumps({"id": d.id, "step": d.step, "g": d.group or None, "e": d.event.as_dict(),
                               "a": d.attempts, "error": error, "stack": stack, "first": d.created_at,
                               "failed": now})
        await self.conn.batched(self._bury, [self._dead],
                                [self.base(d.step), d.entry, d.group, _ms(now), d.id, letter])

    async def recover(self) -> int:
        """Put back what dead hosts left leased for longer than the lease (this host's own previous run
        included); later ones are reclaimed by the upkeep task as their lease runs out."""
        self._start_upkeep()
        return await self._reap_all()

    async def _reap_all(self) -> int:
        steps: set[bytes] = await self._r.smembers(self._steps)  # type: ignore[assignment]
        min_idle, reaped = int(self.lease * 1000), 0
        for step in steps:
            reaped += int(await self._reap(args=[self.base(step.decode()), self.consumer, min_idle,
                                                 max(min_idle * 10, FORGET_CONSUMERS_MS)]))
        return reaped

    async def release(self, ids: list[int]) -> int:
        """Put back deliveries this host holds whose outcome could not be written, due now, attempts kept."""
        wanted, released = set(ids), 0
        for d in [d for d in self._leased.values() if d.id in wanted]:
            await self._put_back(self._held(d), 0.0)
            released += 1
        return released

    async def oldest_due(self, steps: list[str]) -> float:
        """Per step: the first entry the consumer group has not handed out yet (entries enter a stream when
        they are due, so its id's time is when it became due)."""
        now_ms, since = time.time() * 1000, None
        for step in steps:
            stream = self.base(step) + "s"
            try:
                groups = await self._r.xinfo_groups(stream)
            except RedisError:  # no stream yet: nothing queued for this step
                continue
            found = next((g.get("last-delivered-id") for g in groups if g.get("name") in (GROUP, GROUP.encode())),
                         b"0-0")
            last = found.decode() if isinstance(found, bytes) else str(found)
            first = await self._r.xrange(stream, min=f"({last}", max="+", count=1)
            if first:
                entry = first[0][0]
                at = int((entry.decode() if isinstance(entry, bytes) else str(entry)).split("-")[0])
                since = at if since is None else min(since, at)
        return 0.0 if since is None else max(0.0, (now_ms - since) / 1000)

    async def counts(self) -> dict[str, int]:
        ready, leased, dead = await self._counts(keys=[self._steps, self._dead], args=[self.conn.prefix])
        return {"ready": int(ready), "leased": int(leased), "dead": int(dead)}

    async def waiting_elsewhere(self, steps: set[str]) -> dict[str, int]:
        flat = await self._waiting(keys=[self._steps], args=[self.conn.prefix])  # O(1) per step: all of them
        by_step = {_text(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}
        return {step: n for step, n in by_step.items() if step not in steps}

    async def dead(self, step: str | None = None, ids: list[int] | None = None) -> list[DeadLetter]:
        if ids is not None:
            blobs = [b for b in await self._r.hmget(self._dead, ids) if b is not None] if ids else []
        else:
            blobs = list((await self._r.hgetall(self._dead)).values())
        letters = [self._letter(orjson.loads(b)) for b in blobs]
        return sorted((x for x in letters if step is None or x.step == step), key=lambda x: x.id)

    @staticmethod
    def _letter(r: dict[str, Any]) -> DeadLetter:
        return DeadLetter(r["id"], r["step"], Event.from_dict(r["e"]), r["a"], r["error"], r["stack"], r["first"],
                          r["failed"], r["g"])

    async def replay(self, ids: list[int]) -> int:
        replayed = 0
        for letter in await self.dead(ids=ids):
            if letter.event is None:  # only the SQLite journal keeps undecodable records; nothing to send
                continue
            now = time.time()
            group = letter.group or ""
            replayed += int(await self._replay(keys=[self._dead, self._ids, *self._wake_keys], args=[
                letter.id, self.base(letter.step), _tail(0, now, None, letter.event.as_dict()), group,
                orjson.dumps(group or None), _ms(now)]))
        return replayed

    async def drop(self, ids: list[int]) -> int:
        return int(await self._r.hdel(self._dead, *ids)) if ids else 0

    async def watch(self, wake: Callable[[], None]) -> None:
        subscribed = asyncio.get_running_loop().create_future()
        self._watcher = asyncio.get_running_loop().create_task(self._listen(wake, subscribed))
        await asyncio.wait_for(asyncio.shield(subscribed), 10)

    async def _listen(self, wake: Callable[[], None], subscribed: asyncio.Future[None]) -> None:
        while True:
            raise_if_cancelling()
            pubsub = self._r.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._wake_keys[1])
                if not subscribed.done():
                    subscribed.set_result(None)
                async for message in pubsub.listen():
                    raise_if_cancelling()  # else the next read waits for a message that may never come
                    if message.get("type") == "message":
                        wake()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the workers still poll: only the wake-ups from other hosts pause
                raise_if_cancelling()
                log.warning("wake-ups from other hosts interrupted (%s); reconnecting", e)
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    # --- leases: refresh ours, reclaim those of dead hosts
    def _start_upkeep(self) -> None:
        if self._keeps_leases and (self._upkeep is None or self._upkeep.done()):
            self._upkeep = asyncio.get_running_loop().create_task(self._keep_leases())

    async def _keep_leases(self) -> None:
        every = max(0.05, self.lease / 3)
        while True:
            raise_if_cancelling()
            await asyncio.sleep(every)
            try:
                await self._refresh()
                await self._reap_all()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # Redis away for a moment: try again next round, the leases last
                raise_if_cancelling()
                log.warning("could not refresh delivery leases in Redis: %s", e)

    async def _refresh(self) -> None:
        by_step: dict[str, list[Any]] = {}
        for step, entry in list(self._leased):
            by_step.setdefault(step, []).append(entry)
        if not by_step:
            return
        async with self._r.pipeline(transaction=False) as pipe:
            for step, entries in by_step.items():
                pipe.xclaim(self.base(step) + "s", GROUP, self.consumer, 0, entries, justid=True)
            await pipe.execute()

    async def close(self) -> None:
        # what this host still holds (cut short by the drain grace) goes back at once rather than after
        # `lease`: other hosts can run it now; its attempt count already includes the cut-short run
        for d in list(self._leased.values()):
            with contextlib.suppress(RedisError, OSError):
                await self._put_back(self._held(d), 0.0)
        for task in (self._upkeep, self._watcher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
