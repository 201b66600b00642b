"""Atomic `update` on every state store: each op, compare-and-set, TTL, and no lost concurrent updates."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from redis_support import redis_conn

from steppe.state import StateStore, open_state_store
from steppe.state.ops import StateConflict


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "redis":
        async with redis_conn() as conn:
            s = open_state_store("redis", tmp_path, conn)
            yield s
            await s.close()
        return
    s = open_state_store(request.param, tmp_path)
    yield s
    await s.close()


async def test_each_op(store: StateStore) -> None:
    assert await store.update("g", "n", [{"op": "increment"}]) == 1
    assert await store.update("g", "n", [{"op": "decrement", "by": 3}]) == -2
    assert await store.update("g", "o", [{"op": "merge", "value": {"a": 1, "b": 2}}]) == {"a": 1, "b": 2}
    assert await store.update("g", "o", [{"op": "append", "path": "items", "value": "x"},
                                         {"op": "append", "path": ["items"], "value": "y"}]) == {
        "a": 1, "b": 2, "items": ["x", "y"]}
    assert await store.update("g", "o", [{"op": "remove", "path": "a"},
                                         {"op": "remove", "path": "items", "value": "x"},
                                         {"op": "set", "path": "c.d", "value": 0}]) == {
        "b": 2, "items": ["y"], "c": {"d": 0}}
    assert await store.get("g", "o") == {"b": 2, "items": ["y"], "c": {"d": 0}}
    assert await store.update("g", "o", [{"op": "set", "value": [1]}]) == [1]


async def test_compare_and_set(store: StateStore) -> None:
    await store.set("orders", "1", {"status": "paid"})
    with pytest.raises(StateConflict):
        await store.update("orders", "1", [{"op": "expect", "path": "status", "value": "new"},
                                           {"op": "set", "path": "status", "value": "paid"}])
    assert await store.get("orders", "1") == {"status": "paid"}
    assert await store.update("orders", "1", [{"op": "expect", "path": "status", "value": "paid"},
                                              {"op": "set", "path": "status", "value": "shipped"}]) == {
        "status": "shipped"}
    assert await store.update("orders", "2", [{"op": "expect", "value": None}, {"op": "set", "value": 1}]) == 1


@pytest.mark.parametrize("ops", [[], "increment", [{"op": "explode"}], [{"op": "increment", "by": "2"}],
                                 [{"op": "merge", "value": 3}]])
async def test_malformed_ops_change_nothing(store: StateStore, ops) -> None:
    await store.set("g", "k", 5)
    with pytest.raises(ValueError):
        await store.update("g", "k", ops)
    assert await store.get("g", "k") == 5


async def test_ttl_is_kept_or_renewed(store: StateStore) -> None:
    await store.set("g", "k", 1, ttl=0.2)
    await store.update("g", "k", [{"op": "increment"}])  # keeps the expiry
    await asyncio.sleep(0.3)
    assert await store.get("g", "k") is None
    assert await store.update("g", "k", [{"op": "increment"}], ttl=60) == 1  # expired: starts again


async def test_concurrent_increments_are_not_lost(store: StateStore) -> None:
    await asyncio.gather(*(store.update("g", "count", [{"op": "increment"}]) for _ in range(1000)))
    assert await store.get("g", "count") == 1000


async def test_redis_updates_from_two_hosts_are_not_lost(tmp_path: Path) -> None:
    # two stores on two connection pools under one prefix stand for two hosts: only WATCH/MULTI keeps them apart
    from steppe.redis_conn import RedisConn

    async with redis_conn() as conn:
        other = RedisConn(conn.url, conn.prefix)
        a, b = open_state_store("redis", tmp_path, conn), open_state_store("redis", tmp_path, other)
        try:
            await asyncio.gather(*(s.update("g", "count", [{"op": "increment"}]) for _ in range(200) for s in (a, b)))
            assert await a.get("g", "count") == 400
            assert await b.get_group("g") == [400]
        finally:
            await other.close()
