"""The hot paths' Redis connection (steppe.redis_lane) and the batch forms of the queue's scripts, against
the machine's Redis: replies reach their own callers under concurrency and cancellation, errors arrive as
redis-py's exceptions, a dropped connection fails what was in flight and the next call reconnects, a
script Redis does not know is loaded and run, the URL's database is used; a batch of puts run as one
script call keeps each put's own answer (dedupe) and the put order of a FIFO group; without a lane (TLS)
the same calls go through redis-py."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis_support import need_redis, redis_conn

from steppe.event import Event
from steppe.queue import Subscription
from steppe.queue.redis import RedisQueue
from steppe.redis_lane import RedisLane, usable
from steppe.state.redis import RedisStateStore


def key() -> str:
    return f"steppe-test:lane:{uuid.uuid4().hex[:12]}"


async def test_concurrent_calls_each_get_their_own_reply() -> None:
    lane = RedisLane(need_redis())
    try:
        words = [f"w{i}".encode() for i in range(500)]
        assert await asyncio.gather(*[lane.call("ECHO", w) for w in words]) == words
        replies = await lane.calls([("ECHO", "a"), ("NOPE",), ("ECHO", "b")])
        assert replies[0] == b"a" and replies[2] == b"b"
        assert isinstance(replies[1], ResponseError)
    finally:
        lane.close()


async def test_a_cancelled_call_does_not_shift_the_replies_of_later_ones() -> None:
    lane = RedisLane(need_redis())
    k = key()
    try:
        slow = asyncio.ensure_future(lane.call("BLPOP", k, 0.3))  # blocks Redis' answer for this connection
        await asyncio.sleep(0.05)
        slow.cancel()
        assert await lane.call("ECHO", "after") == b"after"  # BLPOP's nil (when it times out) was dropped
    finally:
        lane.close()


async def test_errors_are_redis_py_exceptions() -> None:
    lane = RedisLane(need_redis())
    k = key()
    try:
        await lane.call("SET", k, "text")
        with pytest.raises(ResponseError):
            await lane.call("INCR", k)
        assert await lane.call("GET", k) == b"text"  # the connection is still usable
        await lane.call("DEL", k)
    finally:
        lane.close()


async def test_a_dropped_connection_fails_the_call_in_flight_and_the_next_call_reconnects() -> None:
    url = need_redis()
    lane, admin = RedisLane(url), aioredis.Redis.from_url(url)
    k = key()
    try:
        lane_id = await lane.call("CLIENT", "ID")
        waiting = asyncio.ensure_future(lane.call("BLPOP", k, 5))
        await asyncio.sleep(0.05)
        await admin.execute_command("CLIENT", "KILL", "ID", lane_id)
        with pytest.raises(RedisConnectionError):
            await asyncio.wait_for(waiting, 3)
        assert await lane.call("ECHO", "again") == b"again"
        assert await lane.call("CLIENT", "ID") != lane_id
    finally:
        lane.close()
        await admin.aclose()


async def test_a_script_redis_does_not_know_is_loaded_and_run() -> None:
    async with redis_conn() as conn:
        marker = uuid.uuid4().hex  # a source never loaded before: Redis answers NOSCRIPT first
        script = conn.script(f"return {{ARGV[1], '{marker}'}}")
        assert await conn.run(script, [], ["x"]) == [b"x", marker.encode()]
        assert await conn.batched(script, [], ["y"]) == [b"y", marker.encode()]


async def test_the_urls_database_is_used() -> None:
    url = need_redis()
    base = url.rsplit("/", 1)[0]
    lane, other_db = RedisLane(base + "/3"), aioredis.Redis.from_url(base + "/3")
    k = key()
    try:
        await lane.call("SET", k, "in-db-3")
        assert await other_db.get(k) == b"in-db-3"
    finally:
        await other_db.delete(k)
        lane.close()
        await other_db.aclose()


async def test_puts_batched_into_one_script_call_keep_their_own_answers_and_fifo_order() -> None:
    async with redis_conn() as conn:
        q = RedisQueue(conn, upkeep=False)
        try:
            sub, fifo = Subscription("s"), Subscription("f", fifo=True)
            dup = Event(topic="t", data={}, trace_id="tr", id="dup")
            # one loop turn: one batch, sent as one call of the PUT script's batch form
            answers = await asyncio.gather(q.put(dup, [sub], dedupe_window=60), q.put(dup, [sub], dedupe_window=60),
                                           *[q.put(Event(topic="t", data={"i": i}, trace_id="tr", id=f"g{i}",
                                                         message_group_id="G"), [fifo]) for i in range(20)])
            assert answers == [True, False] + [True] * 20
            assert [d.event.id for d in await q.take("s", 10, False)] == ["dup"]
            order = []
            for _ in range(20):
                [d] = await q.take("f", 10, True)
                order.append(d.event.id)
                await q.ack(d)  # releases the group's next delivery
            assert order == [f"g{i}" for i in range(20)]
        finally:
            await q.close()


async def test_acks_batched_into_one_script_call_settle_every_delivery() -> None:
    async with redis_conn() as conn:
        q = RedisQueue(conn, upkeep=False)
        try:
            sub = Subscription("s")
            await asyncio.gather(*[q.put(Event(topic="t", data={"i": i}, trace_id="tr", id=f"e{i}"), [sub])
                                   for i in range(30)])
            taken = await q.take("s", 100, False)
            assert len(taken) == 30
            assert await q.counts() == {"ready": 0, "leased": 30, "dead": 0}
            await asyncio.gather(*[q.ack(d) for d in taken])
            assert await q.counts() == {"ready": 0, "leased": 0, "dead": 0}
            assert await q.take("s", 100, False) == []
        finally:
            await q.close()


async def test_sets_puts_and_acks_interleaved_in_one_turn_each_keep_their_own_order() -> None:
    # one turn's calls of three kinds in turn; the puts and the ack share a batch, each script's calls
    # run as one call of its batch form, in their call order (the last set of a key wins; a FIFO group's
    # puts keep their order)
    async with redis_conn() as conn:
        q, state = RedisQueue(conn, upkeep=False), RedisStateStore(conn)
        try:
            fifo = Subscription("f", fifo=True)
            await q.put(Event(topic="t", data={}, trace_id="tr", id="first"), [fifo])
            [held] = await q.take("f", 10, True)
            calls, expected = [], []
            for i in range(10):
                calls += [state.set("g", "k", i), state.set("g", f"k{i}", i),
                          q.put(Event(topic="t", data={"i": i}, trace_id="tr", id=f"p{i}", message_group_id="G"),
                                [fifo])]
                expected += [i, i, True]
                if i == 5:
                    calls.append(q.ack(held))
                    expected.append(None)
            answers = await asyncio.gather(*calls)
            assert answers == expected
            assert await state.get("g", "k") == 9
            assert await state.get_group("g") == [9, *range(10)]  # in the order the keys were first set
            order = []
            for _ in range(10):
                [d] = await q.take("f", 10, True)
                order.append(d.event.id)
                await q.ack(d)
            assert order == [f"p{i}" for i in range(10)]
        finally:
            await q.close()


async def test_without_a_lane_the_same_calls_go_through_redis_py() -> None:
    # TLS URLs (rediss://) have no lane: scripts, batches (batch forms included) and commands use the pool
    assert not usable("rediss://example.invalid:6380/0")
    async with redis_conn() as conn:
        conn.lane = None
        q, state = RedisQueue(conn, upkeep=False), RedisStateStore(conn)
        try:
            sub = Subscription("s")
            dup = Event(topic="t", data={}, trace_id="tr", id="dup")
            answers = await asyncio.gather(q.put(dup, [sub], dedupe_window=60), q.put(dup, [sub], dedupe_window=60),
                                           q.put(Event(topic="t", data={}, trace_id="tr", id="other"), [sub]))
            assert answers == [True, False, True]
            taken = await q.take("s", 10, False)
            assert sorted(d.event.id for d in taken) == ["dup", "other"]
            await asyncio.gather(*[q.ack(d) for d in taken])
            assert await q.counts() == {"ready": 0, "leased": 0, "dead": 0}
            await state.set("g", "k", {"v": 1})
            assert await state.get("g", "k") == {"v": 1}
            assert await state.delete("g", "k") == {"v": 1}
        finally:
            await q.close()


def test_a_second_event_loop_gets_a_connection_of_its_own() -> None:
    lane = RedisLane(need_redis())
    for loop in ("first loop", "second loop"):  # the second must not write on the first loop's transport
        assert asyncio.run(asyncio.wait_for(lane.call("ECHO", loop), 5)) == loop.encode()
