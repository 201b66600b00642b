"""What the Workbench asks of the stores beyond the handlers' contract, on both backends: a state group's
keys with their expiry, a stream's groups with their sizes."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis_support import redis_conn

from steppe.state import open_state_store
from steppe.streams import open_stream_store


@contextlib.asynccontextmanager
async def opened(kind: str, open_store: Any, tmp_path: Path) -> AsyncIterator[Any]:
    if kind == "redis":
        async with redis_conn() as conn:
            store = open_store(kind, tmp_path, conn)
            yield store
            await store.close()
        return
    store = open_store(kind, tmp_path)
    try:
        yield store
    finally:
        await store.close()


@pytest.mark.parametrize("backend", ["memory", "sqlite", "redis"])
async def test_state_entries_list_keys_in_order_with_their_expiry(backend: str, tmp_path: Path) -> None:
    async with opened(backend, open_state_store, tmp_path) as store:
        await store.set("g", "b", {"n": 1})
        await store.set("g", "a", [1, 2], ttl=60)
        await store.set("g", "gone", 1, ttl=0.01)
        await store.set("other", "x", 1)
        time.sleep(0.02)
        rows = await store.entries("g")
        assert [(r["key"], r["value"]) for r in rows] == [("b", {"n": 1}), ("a", [1, 2])]
        assert rows[0]["expiresAt"] is None and time.time() + 55 < rows[1]["expiresAt"] <= time.time() + 60
        assert await store.entries("empty") == []
        with pytest.raises(ValueError):
            await store.entries(5)


@pytest.mark.parametrize("backend", ["memory", "sqlite", "redis"])
async def test_stream_groups_list_each_group_with_its_size(backend: str, tmp_path: Path) -> None:
    async with opened(backend, open_stream_store, tmp_path) as store:
        await store.set("chat", "room-b", "1", {"t": "hi"})
        await store.set("chat", "room-a", "1", {"t": "yo"})
        await store.set("chat", "room-a", "2", {"t": "yo"})
        await store.set("other", "room-c", "1", {})
        await store.delete("chat", "room-b", "1")
        assert await store.groups("chat") == [{"groupId": "room-a", "count": 2}]
        assert await store.groups("none") == []
        with pytest.raises(ValueError):
            await store.groups(5)
