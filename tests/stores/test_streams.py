"""Stream stores (every backend: memory, SQLite, Redis), the hub's fan-out and the Streams facade handlers call."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from redis_support import redis_conn

from steppe.streams import (
    MemoryStreamStore,
    SqliteStreamStore,
    StreamHub,
    Streams,
    StreamStore,
    UnknownStream,
    open_stream_store,
)


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "redis":
        async with redis_conn() as conn:
            s = open_stream_store("redis", tmp_path, conn)
            yield s
            await s.close()
        return
    s = open_stream_store(request.param, tmp_path)
    yield s
    await s.close()


@pytest.fixture
async def hub(store: StreamStore) -> StreamHub:
    """A hub the store's changes reach (through Redis pub/sub for the Redis store)."""
    h = StreamHub()
    await store.start(h)
    return h


async def flushed(store: StreamStore, hub: StreamHub) -> None:
    """Wait until every change made so far has reached the hub: a store that fans out through Redis
    delivers in order, so a marker sent last arriving means everything before it has."""
    if not store.fans_out:
        return
    marker = Recorder()
    hub.subscribe(marker, "__flush__", "g")
    await store.send("__flush__", "g", None, {"type": "flush", "data": None})
    for _ in range(500):
        if marker.messages:
            break
        await asyncio.sleep(0.01)
    hub.drop(marker)
    assert marker.messages, "the stream fan-out through Redis delivered nothing within 5s"


class Recorder:
    """A hub sink that keeps what it is offered, decoded."""

    def __init__(self) -> None:
        self.messages: list[dict] = []

    def offer(self, text: str) -> None:
        self.messages.append(orjson.loads(text))

    def events(self) -> list[tuple]:
        return [(m.get("id"), m["event"]["type"], m["event"].get("data") or m["event"].get("event"))
                for m in self.messages]


async def test_set_reports_create_then_update(store: StreamStore) -> None:
    item, created = await store.set("todos", "g", "1", {"title": "a", "done": False})
    assert (item, created) == ({"title": "a", "done": False, "id": "1"}, True)
    item, created = await store.set("todos", "g", "1", {"title": "b", "done": True})
    assert (item, created) == ({"title": "b", "done": True, "id": "1"}, False)
    assert await store.get("todos", "g", "1") == {"title": "b", "done": True, "id": "1"}


async def test_id_argument_wins_and_falsy_fields_survive(store: StreamStore) -> None:
    item, _ = await store.set("s", "g", "real", {"id": "other", "n": 0, "s": "", "b": False, "z": None})
    assert item == {"id": "real", "n": 0, "s": "", "b": False, "z": None}
    assert await store.get("s", "g", "real") == item
    assert await store.get("s", "g", "other") is None


async def test_get_group_is_exact_and_ordered(store: StreamStore) -> None:
    await store.set("s", "room", "b", {"v": 1})
    await store.set("s", "room", "a", {"v": 2})
    await store.set("s", "room_2", "c", {"v": 3})
    await store.set("other", "room", "d", {"v": 4})
    await store.set("s", "room", "b", {"v": 5})  # replacing keeps the place
    assert await store.get_group("s", "room") == [{"v": 5, "id": "b"}, {"v": 2, "id": "a"}]
    assert await store.get_group("s", "room_2") == [{"v": 3, "id": "c"}]
    assert await store.get_group("s", "nope") == []


async def test_delete_returns_the_item(store: StreamStore) -> None:
    await store.set("s", "g", "1", {"v": 1})
    assert await store.delete("s", "g", "1") == {"v": 1, "id": "1"}
    assert await store.delete("s", "g", "1") is None
    assert await store.get("s", "g", "1") is None
    assert await store.get_group("s", "g") == []
    _, created = await store.set("s", "g", "1", {"v": 2})
    assert created


@pytest.mark.parametrize("data", [0, "text", None, [1, 2], False])
async def test_non_object_data_is_refused(store: StreamStore, data) -> None:
    with pytest.raises(ValueError, match="object"):
        await store.set("s", "g", "1", data)
    assert await store.get_group("s", "g") == []


async def test_bad_addresses_are_refused(store: StreamStore) -> None:
    with pytest.raises(ValueError, match="groupId"):
        await store.set("s", None, "1", {})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="id"):
        await store.get("s", "g", 1)  # type: ignore[arg-type]


async def test_sqlite_persists_across_reopen(tmp_path: Path) -> None:
    first = SqliteStreamStore(tmp_path / "streams.db")
    await first.set("s", "g", "1", {"v": 1})
    await first.set("s", "g", "2", {"v": 2})
    await first.close()
    second = SqliteStreamStore(tmp_path / "streams.db")
    assert await second.get_group("s", "g") == [{"v": 1, "id": "1"}, {"v": 2, "id": "2"}]
    _, created = await second.set("s", "g", "1", {"v": 3})
    assert not created
    await second.close()


async def test_factory(tmp_path: Path) -> None:
    memory = open_stream_store("memory", tmp_path)
    assert isinstance(memory, MemoryStreamStore)
    sqlite = open_stream_store("sqlite", tmp_path / ".steppe")
    assert isinstance(sqlite, SqliteStreamStore) and sqlite.path == tmp_path / ".steppe" / "streams.db"
    await sqlite.close()
    with pytest.raises(ValueError):
        open_stream_store("redis", tmp_path)  # type: ignore[arg-type]


# -- hub and facade


async def test_item_changes_reach_item_and_group_subscribers(store: StreamStore, hub: StreamHub) -> None:
    streams = Streams(store, hub, {"todos"})
    item_sub, group_sub, other = Recorder(), Recorder(), Recorder()
    hub.subscribe(item_sub, "todos", "g", "1")
    hub.subscribe(group_sub, "todos", "g")
    hub.subscribe(other, "todos", "g2")

    assert await streams.set("todos", "g", "1", {"t": "a"}) == {"t": "a", "id": "1"}
    await streams.set("todos", "g", "1", {"t": "b"})
    await streams.set("todos", "g", "2", {"t": "c"})
    assert await streams.delete("todos", "g", "1") == {"t": "b", "id": "1"}
    assert await streams.delete("todos", "g", "1") is None  # nothing removed, nothing published
    await flushed(store, hub)

    assert item_sub.events() == [
        ("1", "create", {"t": "a", "id": "1"}),
        ("1", "update", {"t": "b", "id": "1"}),
        ("1", "delete", {"t": "b", "id": "1"}),
    ]
    assert group_sub.events() == [
        ("1", "create", {"t": "a", "id": "1"}),
        ("1", "update", {"t": "b", "id": "1"}),
        ("2", "create", {"t": "c", "id": "2"}),
        ("1", "delete", {"t": "b", "id": "1"}),
    ]
    assert other.messages == []
    first = group_sub.messages[0]
    assert first["streamName"] == "todos" and first["groupId"] == "g" and isinstance(first["timestamp"], int)


async def test_a_sink_in_both_rooms_gets_each_change_once(store: StreamStore, hub: StreamHub) -> None:
    sink = Recorder()
    hub.subscribe(sink, "todos", "g")
    hub.subscribe(sink, "todos", "g", "1")
    await Streams(store, hub, {"todos"}).set("todos", "g", "1", {})
    await flushed(store, hub)
    assert len(sink.messages) == 1


async def test_send_publishes_an_ephemeral_event(store: StreamStore, hub: StreamHub) -> None:
    streams = Streams(store, hub, {"chat"})
    group_sub, item_sub, other_item = Recorder(), Recorder(), Recorder()
    hub.subscribe(group_sub, "chat", "room")
    hub.subscribe(item_sub, "chat", "room", "m1")
    hub.subscribe(other_item, "chat", "room", "m2")

    await streams.send("chat", {"groupId": "room"}, {"type": "typing", "data": {"who": "ann"}})
    await streams.send("chat", {"groupId": "room", "id": "m1"}, {"type": "seen", "data": 0})
    await flushed(store, hub)

    assert group_sub.events() == [(None, "event", {"type": "typing", "data": {"who": "ann"}}),
                                  ("m1", "event", {"type": "seen", "data": 0})]
    assert item_sub.events() == [("m1", "event", {"type": "seen", "data": 0})]
    assert other_item.messages == []
    assert await store.get_group("chat", "room") == []  # not stored


async def test_unknown_streams_and_bad_send_arguments_are_refused(store: StreamStore) -> None:
    names = {"todos"}
    streams = Streams(store, StreamHub(), lambda: names)
    with pytest.raises(UnknownStream):
        await streams.set("nope", "g", "1", {})
    with pytest.raises(UnknownStream):
        await streams.get_group("nope", "g")
    with pytest.raises(UnknownStream):
        await streams.send("nope", {"groupId": "g"}, {"type": "x"})
    assert isinstance(UnknownStream("x"), ValueError)
    names.add("nope")  # names given as a callable are read on every call (dev reload)
    assert await streams.set("nope", "g", "1", {}) == {"id": "1"}
    with pytest.raises(ValueError):
        await streams.send("todos", {"id": "1"}, {"type": "x"})
    with pytest.raises(ValueError):
        await streams.send("todos", {"groupId": "g"}, {"data": 1})


async def test_unsubscribe_counts_and_drop() -> None:
    hub = StreamHub()
    sink = Recorder()
    hub.subscribe(sink, "s", "g")
    hub.subscribe(sink, "s", "g")  # two subscriptions of one socket to one room
    hub.subscribe(sink, "s", "g", "1")
    hub.unsubscribe(sink, "s", "g")
    assert hub.subscriber_count("s", "g") == 1
    hub.publish_item("s", "g", "2", "create", {"id": "2"})
    assert len(sink.messages) == 1
    hub.drop(sink)
    assert hub.subscriber_count("s", "g") == 0 and hub.subscriber_count("s", "g", "1") == 0
    hub.publish_item("s", "g", "1", "update", {"id": "1"})
    assert len(sink.messages) == 1
    hub.unsubscribe(sink, "s", "g")  # unknown: ignored
