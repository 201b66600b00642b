"""Redis streams across hosts: two stores on two connection pools under one prefix stand for two hosts,
each with its own hub. A change made through either reaches the subscribers of both, in the order the
changes were made, with stamps that only grow."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
from redis_support import redis_conn

from steppe.redis_conn import RedisConn
from steppe.streams import StreamHub, Streams, open_stream_store


class Recorder:
    def __init__(self) -> None:
        self.messages: list[dict] = []

    def offer(self, text: str) -> None:
        self.messages.append(orjson.loads(text))


async def test_changes_from_either_host_reach_both_in_order(tmp_path: Path) -> None:
    async with redis_conn() as conn_a:
        conn_b = RedisConn(conn_a.url, conn_a.prefix)
        store_a, store_b = open_stream_store("redis", tmp_path, conn_a), open_stream_store("redis", tmp_path, conn_b)
        hub_a, hub_b = StreamHub(), StreamHub()
        await store_a.start(hub_a)
        await store_b.start(hub_b)
        on_a, on_b = Recorder(), Recorder()
        hub_a.subscribe(on_a, "todos", "g", "1")
        hub_b.subscribe(on_b, "todos", "g")
        a, b = Streams(store_a, hub_a, {"todos"}), Streams(store_b, hub_b, {"todos"})
        try:
            # both hosts write the same item at once; every subscriber must see one order, the stored one
            await asyncio.gather(*(s.set("todos", "g", "1", {"n": i, "by": name})
                                   for i in range(100) for name, s in (("a", a), ("b", b))))
            await b.send("todos", {"groupId": "g", "id": "1"}, {"type": "done", "data": None})
            for rec in (on_a, on_b):
                for _ in range(500):
                    if rec.messages and rec.messages[-1]["event"]["type"] == "event":
                        break
                    await asyncio.sleep(0.01)
            assert len(on_a.messages) == len(on_b.messages) == 201
            assert on_a.messages == on_b.messages  # the same changes, in the same order, on both hosts
            changes = on_a.messages[:-1]
            assert changes[0]["event"]["type"] == "create" and {m["event"]["type"] for m in changes[1:]} == {"update"}
            stamps = [m["timestamp"] for m in on_a.messages]
            assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
            final = await store_a.get("todos", "g", "1")
            assert changes[-1]["event"]["data"] == final  # the last change heard is what is stored
            assert await store_b.get_group("todos", "g") == [final]
        finally:
            await store_a.close()
            await store_b.close()
            await conn_b.close()
