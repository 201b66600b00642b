"""State stores, every backend (memory, SQLite, Redis): exact round-trips, exact groups, TTL, persistence,
concurrency."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from redis_support import redis_conn

from steppe.state import MemoryStateStore, SqliteStateStore, StateStore, open_state_store


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


@pytest.mark.parametrize("value", [0, "", False, None, 0.0, [], {}, 1.5, "text", True, -7])
async def test_falsy_and_scalar_values_round_trip_exactly(store: StateStore, value) -> None:
    assert await store.set("g", "k", value) == value
    got = await store.get("g", "k")
    assert got == value and type(got) is type(value)


async def test_nested_dict_is_not_wrapped(store: StateStore) -> None:
    value = {"data": {"a": [1, {"b": None}], "c": "x"}, "n": 0, "ok": False}
    await store.set("g", "k", value)
    assert await store.get("g", "k") == value
    assert await store.get_group("g") == [value]


async def test_missing_key_and_group(store: StateStore) -> None:
    assert await store.get("nope", "k") is None
    assert await store.get_group("nope") == []
    assert await store.delete("nope", "k") is None


async def test_stored_value_is_a_copy(store: StateStore) -> None:
    value = {"items": [1]}
    await store.set("g", "k", value)
    value["items"].append(2)
    got = await store.get("g", "k")
    assert got == {"items": [1]}
    got["items"].append(3)
    assert await store.get("g", "k") == {"items": [1]}


async def test_get_group_matches_exactly(store: StateStore) -> None:
    await store.set("orders", "a", 1)
    await store.set("orders_python", "b", 2)
    await store.set("order", "c", 3)
    await store.set("ORDERS", "d", 4)
    await store.set("orders%", "e", 5)
    assert await store.get_group("orders") == [1]
    assert await store.get_group("orders_python") == [2]
    assert await store.get_group("orders%") == [5]
    assert await store.get_group("order_") == []
    await store.clear("orders")
    assert await store.get_group("orders") == []
    assert await store.get_group("orders_python") == [2]
    assert await store.groups() == ["ORDERS", "order", "orders%", "orders_python"]


async def test_get_group_keeps_first_insertion_order(store: StateStore) -> None:
    for key in ["z", "a", "m"]:
        await store.set("g", key, key)
    await store.set("g", "z", "z2")  # overwriting keeps the place
    assert await store.get_group("g") == ["z2", "a", "m"]
    await store.delete("g", "a")
    await store.set("g", "a", "a2")  # deleted then set again: last
    assert await store.get_group("g") == ["z2", "m", "a2"]


async def test_delete_returns_the_value(store: StateStore) -> None:
    await store.set("g", "k", {"v": 0})
    assert await store.delete("g", "k") == {"v": 0}
    assert await store.get("g", "k") is None
    assert await store.delete("g", "k") is None
    await store.set("g", "zero", 0)
    assert await store.delete("g", "zero") == 0


async def test_clear_and_groups(store: StateStore) -> None:
    await store.set("a", "1", 1)
    await store.set("a", "2", 2)
    await store.set("b", "1", 1)
    assert await store.groups() == ["a", "b"]
    assert await store.clear("a") is None
    assert await store.get_group("a") == []
    assert await store.get("a", "1") is None
    assert await store.groups() == ["b"]
    await store.clear("never-existed")


async def test_ttl_expiry(store: StateStore) -> None:
    await store.set("g", "short", "s", ttl=0.2)
    await store.set("g", "long", "l", ttl=60)
    await store.set("g", "forever", "f")
    await store.set("brief", "k", 1, ttl=0.2)
    assert await store.get("g", "short") == "s"
    assert await store.get_group("g") == ["s", "l", "f"]
    await asyncio.sleep(0.35)
    assert await store.get("g", "short") is None
    assert await store.get_group("g") == ["l", "f"]
    assert await store.delete("brief", "k") is None  # expired: nothing to return
    assert await store.groups() == ["g"]
    await store.set("g", "short", "again")  # an expired key set again is new: it goes last
    assert await store.get_group("g") == ["l", "f", "again"]


async def test_set_without_ttl_makes_an_expiring_key_permanent(store: StateStore) -> None:
    await store.set("g", "k", 1, ttl=0.2)
    await store.set("g", "k", 2)
    await asyncio.sleep(0.3)
    assert await store.get("g", "k") == 2


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), float("inf"), "5", True])
async def test_bad_ttl_is_refused(store: StateStore, ttl) -> None:
    with pytest.raises(ValueError):
        await store.set("g", "k", 1, ttl=ttl)
    assert await store.get("g", "k") is None


async def test_non_json_values_and_bad_names_are_refused(store: StateStore) -> None:
    with pytest.raises(ValueError, match="JSON"):
        await store.set("g", "k", {1: "int key"})
    with pytest.raises(ValueError, match="JSON"):
        await store.set("g", "k", object())
    with pytest.raises(ValueError, match="JSON"):
        await store.set("g", "k", 2**70)
    with pytest.raises(ValueError, match="group"):
        await store.set(None, "k", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="key"):
        await store.get("g", 3)  # type: ignore[arg-type]
    assert await store.get_group("g") == []


async def test_concurrent_sets_from_many_tasks(store: StateStore) -> None:
    async def writer(n: int) -> None:
        for i in range(20):
            await store.set("shared", f"{n}:{i}", {"n": n, "i": i})
            await asyncio.sleep(0)
            await store.set("counter", str(n), i)

    await asyncio.gather(*(writer(n) for n in range(50)))
    values = await store.get_group("shared")
    assert len(values) == 1000
    assert sorted((v["n"], v["i"]) for v in values) == [(n, i) for n in range(50) for i in range(20)]
    assert await store.get_group("counter") == [19] * 50


async def test_sqlite_persists_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    first = SqliteStateStore(path)
    await first.set("g", "zero", 0)
    await first.set("g", "dict", {"a": 1})
    await first.set("g", "gone-soon", 1, ttl=0.2)
    await first.close()
    await asyncio.sleep(0.3)
    second = SqliteStateStore(path)
    assert await second.get("g", "zero") == 0
    assert await second.get_group("g") == [0, {"a": 1}]
    assert await second.groups() == ["g"]
    await second.close()


async def test_sqlite_sweeps_expired_rows(tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path / "state.db")
    await store.set("g", "k", 1, ttl=0.1)
    await asyncio.sleep(0.2)
    store._next_sweep = 0  # the next call is due a sweep
    assert await store.groups() == []
    assert store._db.execute("SELECT COUNT(*) FROM state").fetchone() == (0,)
    await store.close()


async def test_factory(tmp_path: Path) -> None:
    memory = open_state_store("memory", tmp_path)
    assert isinstance(memory, MemoryStateStore)
    await memory.close()
    sqlite = open_state_store("sqlite", tmp_path / "nested" / ".steppe")
    assert isinstance(sqlite, SqliteStateStore)
    assert sqlite.path == tmp_path / "nested" / ".steppe" / "state.db"
    assert sqlite._db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert sqlite._db.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    await sqlite.close()
    with pytest.raises(ValueError):
        open_state_store("redis", tmp_path)  # type: ignore[arg-type]


async def test_sqlite_key_expiring_after_a_reopen_goes_last_when_set_again(tmp_path: Path) -> None:
    """A set with no ttl is one upsert while no row carries an expiry; a row from an earlier run that does
    (and expires after the start's sweep) must still be dropped first, so the key set again goes last."""
    path = tmp_path / "state.db"
    first = SqliteStateStore(path)
    await first.set("g", "brief", "b", ttl=0.4)
    await first.set("g", "kept", "k")
    await first.close()
    second = SqliteStateStore(path)
    assert await second.get_group("g") == ["b", "k"]  # the first call's sweep finds nothing expired yet
    await asyncio.sleep(0.5)
    await second.set("g", "brief", "again")
    assert await second.get_group("g") == ["k", "again"]
    await second.close()
