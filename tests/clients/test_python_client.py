"""The Python stream client (steppe.stream_client) against real `steppe dev` hosts whose Python and JS API
steps write the stream: item and group subscriptions, ordering, events, errors, auth, reconnecting after
a host restart on the same port, a slow consumer next to a fast one, and fan-out to 500 sockets."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from conftest import RunningHost, free_port, write_project
from steppe.stream_client import StreamAuthError, StreamClient, StreamError

from . import PROJECT, op, ws_url


async def test_item_and_group_changes_and_events_arrive_in_order(start_host, tmp_path: Path) -> None:
    host = start_host(write_project(tmp_path, PROJECT))
    async with StreamClient(ws_url(host)) as client, httpx.AsyncClient(base_url=host.url, timeout=10) as http:
        assert client.connected.is_set() and client.connections == 1
        await op(http, "py", "g1", "a", op="set", data={"title": "first"})

        group = await client.subscribe_group("todos", "g1")
        item = await client.subscribe_item("todos", "g1", "a")
        later = await client.subscribe_item("todos", "g1", "b")  # missing: no sync, but subscribed
        assert await group.wait_synced() == [{"title": "first", "id": "a"}]
        assert await item.wait_synced() == {"title": "first", "id": "a"}
        assert later.value is None and not later.synced
        seen: list[list[dict[str, Any]]] = []
        group.on_change(seen.append)
        group_events: list[Any] = []
        group.on_event("ping", group_events.append)
        item_notes: list[Any] = []
        item.on_event("note", item_notes.append)

        await op(http, "py", "g1", "b", op="set", data={"title": "second"})
        await op(http, "js", "g1", "a", op="set", data={"title": "first, edited"})
        await op(http, "js", "g1", "c", op="set", data={"title": "third"})
        await op(http, "py", "g1", "-", op="send", type="ping", data={"from": "python"})
        await op(http, "js", "g1", "a", op="send", type="note", data={"from": "js"}, item=True)
        assert await op(http, "py", "g1", "a", op="delete") == {"title": "first, edited", "id": "a"}
        await op(http, "js", "g1", "b", op="delete")

        changes = [await group.next_change(5) for _ in range(6)]
        assert [(c.type, c.item) for c in changes] == [
            ("sync", [{"title": "first", "id": "a"}]),
            ("create", {"title": "second", "id": "b"}),
            ("update", {"title": "first, edited", "id": "a"}),
            ("create", {"title": "third", "id": "c"}),
            ("delete", {"title": "first, edited", "id": "a"}),
            ("delete", {"title": "second", "id": "b"}),
        ]
        ids = [[i["id"] for i in c.value] for c in changes]
        assert ids == [["a"], ["a", "b"], ["a", "b"], ["a", "b", "c"], ["b", "c"], ["c"]]
        assert group.value == [{"title": "third", "id": "c"}]
        assert [[i["id"] for i in v] for v in seen] == ids[1:]  # listeners came after the sync

        # events reach the group (with and without an item id) and the item's own subscription
        first, second = await group.next_event(5), await group.next_event(5)
        assert (first.type, first.data, first.id) == ("ping", {"from": "python"}, None)
        assert (second.type, second.data, second.id) == ("note", {"from": "js"}, "a")
        assert group_events == [{"from": "python"}]
        assert (await item.next_event(5)).data == {"from": "js"} and item_notes == [{"from": "js"}]

        assert [(c.type, c.value) for c in [await item.next_change(5) for _ in range(3)]] == [
            ("sync", {"title": "first", "id": "a"}),
            ("update", {"title": "first, edited", "id": "a"}),
            ("delete", None),
        ]
        assert [(c.type, c.value) for c in [await later.next_change(5) for _ in range(2)]] == [
            ("create", {"title": "second", "id": "b"}), ("delete", None)]

        # a closed subscription leaves: its socket stops getting the room's changes
        await item.close()
        await later.close()
        await op(http, "py", "g1", "a", op="set", data={"title": "back"})
        assert (await group.next_change(5)).item == {"title": "back", "id": "a"}
        assert item.drain() == [] and later.drain() == []
        assert item.value is None


async def test_errors_reach_the_subscription(start_host, tmp_path: Path) -> None:
    host = start_host(write_project(tmp_path, PROJECT))
    async with StreamClient(host.url) as client:  # http://host:port works too
        errors: list[StreamError] = []
        nope = await client.subscribe_group("nope", "g")
        nope.on_error(errors.append)
        with pytest.raises(StreamError) as raised:
            await nope.wait_synced(5)
        assert raised.value.code == "STREAM_NOT_FOUND"
        assert [e.code for e in nope.errors] == ["STREAM_NOT_FOUND"] and errors == nope.errors
        with pytest.raises(StreamError):
            await nope.next_change(5)
        # the socket still serves the other subscriptions
        todos = await client.subscribe_group("todos", "still-fine")
        assert await todos.wait_synced(5) == []


async def test_auth_token_as_protocol_or_query_and_refusal(start_host, tmp_path: Path) -> None:
    root = write_project(tmp_path, {
        **PROJECT,
        "steppe_auth.py": """
            from urllib.parse import parse_qs, urlsplit

            async def authenticate(request):
                protocol = request["headers"].get("sec-websocket-protocol", "")
                token = protocol.split(",", 1)[1].strip() if protocol.startswith("Authorization,") else None
                token = token or parse_qs(urlsplit(request["url"]).query).get("authToken", [None])[0]
                if token != "let-me-in":
                    raise PermissionError("bad token")
                return {"user": "ann"}
        """,
    })
    host = start_host(root)
    for in_query in (False, True):
        async with StreamClient(ws_url(host), auth_token="let-me-in", token_in_query=in_query) as client:
            assert await (await client.subscribe_group("todos", "g")).wait_synced(5) == []
    for token in ("wrong", None):
        with pytest.raises(StreamAuthError):
            async with StreamClient(ws_url(host), auth_token=token):
                pass


# -- restart


async def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_reconnects_and_rejoins_after_the_host_restarts(tmp_path: Path) -> None:
    root = write_project(tmp_path, PROJECT)
    port = free_port()
    hosts = [RunningHost(root, [], None, port=port)]
    try:
        await hosts[0].ready()
        async with StreamClient(ws_url(hosts[0].url)) as client, \
                httpx.AsyncClient(base_url=hosts[0].url, timeout=10) as http:
            await op(http, "py", "keep", "x", op="set", data={"v": 1})
            await op(http, "js", "keep", "y", op="set", data={"v": 2})
            group = await client.subscribe_group("todos", "keep")
            item = await client.subscribe_item("todos", "keep", "x")
            assert [i["id"] for i in await group.wait_synced()] == ["x", "y"]
            await item.wait_synced()
            group.drain()
            item.drain()

            hosts[0].stop()
            await wait_for(lambda: not client.connected.is_set(), 10, "the client to see the host go")
            await asyncio.sleep(0.6)  # a few failed attempts, so that the backoff is exercised
            # the same project dir (SQLite items persist), on the same port
            hosts.append(RunningHost(root, [], None, port=port))
            await hosts[1].ready()

            # the client comes back by itself, joins again, and the sync holds the persisted items
            resync = await group.next_change(20)
            assert resync.type == "sync"
            assert resync.value == [{"v": 1, "id": "x"}, {"v": 2, "id": "y"}]
            assert (await item.next_change(5)).value == {"v": 1, "id": "x"}
            assert client.connected.is_set() and client.connections == 2

            await op(http, "py", "keep", "x", op="set", data={"v": 3})  # the new host, same address
            change = await group.next_change(5)
            assert (change.type, change.item) == ("update", {"v": 3, "id": "x"})
            assert (await item.next_change(5)).value == {"v": 3, "id": "x"}
    finally:
        for host in hosts:
            host.stop()


async def test_a_restarted_host_whose_stamps_are_lower_is_still_resynced(tmp_path: Path) -> None:
    """Seen: after a burst of more than one change a millisecond, the host's stamps ran seconds ahead of the
    clock (they are strictly increasing milliseconds); a host restarted meanwhile stamped its sync lower, and
    the client dropped that sync as "from an older connection", then every change after it as stale."""
    root = write_project(tmp_path, PROJECT)
    port = free_port()
    hosts = [RunningHost(root, [], None, port=port)]
    try:
        await hosts[0].ready()
        async with StreamClient(ws_url(hosts[0].url), buffer=10_000) as client, \
                httpx.AsyncClient(base_url=hosts[0].url, timeout=60) as http:
            group = await client.subscribe_group("todos", "hot")  # a subscriber: the burst's changes are stamped
            await group.wait_synced()
            r = await http.post("/py/burst/hot", json={"n": 6000, "ids": 1, "start": 0})
            assert r.status_code == 200, r.text
            await wait_for(lambda: group.value == [{"k": 5999, "pad": "", "id": "i0"}], 20, "the burst's last change")
            item = await client.subscribe_item("todos", "hot", "i0")  # joined now: its sync is stamped ahead too
            await item.wait_synced()
            ahead = item.drain()[-1].timestamp / 1000 - time.time()
            assert ahead > 2, f"the burst left the stamps only {ahead:.1f}s ahead: the test needs more"
            hosts[0].stop()
            hosts.append(RunningHost(root, [], None, port=port))
            await hosts[1].ready()
            resync = await item.next_change(20)  # the new host's sync, stamped lower than the old one's
            assert resync.type == "sync" and resync.value == {"k": 5999, "pad": "", "id": "i0"}, resync
            await op(http, "py", "hot", "i0", op="set", data={"v": "after"})
            change = await item.next_change(5)
            assert (change.type, change.value) == ("update", {"v": "after", "id": "i0"})
    finally:
        for host in hosts:
            host.stop()


# -- slow consumers and fan-out


async def test_a_slow_consumer_does_not_block_a_fast_client(start_host, tmp_path: Path) -> None:
    host = start_host(write_project(tmp_path, PROJECT))
    # the host drops a socket once 1000 messages wait for it; its kernel buffers hold a few MB more
    chunks, chunk, size = 16, 100, 16_000
    total = chunks * chunk
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window: sends back up quickly
    raw.connect(("127.0.0.1", host.port))
    async with connect(ws_url(host), sock=raw, max_queue=1, compression=None) as slow, \
            StreamClient(ws_url(host)) as client, httpx.AsyncClient(base_url=host.url, timeout=30) as http:
        await slow.send(json.dumps({"type": "join", "data": {"streamName": "todos", "groupId": "busy"}}))
        assert json.loads(await asyncio.wait_for(slow.recv(), 5))["event"] == {"type": "sync", "data": []}
        fast = await client.subscribe_group("todos", "busy")
        await fast.wait_synced(5)
        fast.drain()
        received: list[int] = []
        fast.on_change(lambda _: received.append(1))
        ks: list[int] = []

        started = time.monotonic()
        for c in range(chunks):  # the slow socket never reads from here on
            response = await http.post("/py/burst/busy", json={"n": chunk, "size": size, "ids": 10,
                                                               "start": c * chunk})
            assert response.status_code == 200
            # in step with the fast client, so that only the slow socket can fall behind
            while len(ks) < (c + 1) * chunk:
                ks.append((await fast.next_change(10)).item["k"])
        elapsed = time.monotonic() - started
        assert ks == list(range(total))  # every update, in order
        assert client.connections == 1  # never dropped
        print(f"\nslow consumer: fast client got {total} x {size // 1000} kB updates in {elapsed:.2f} s "
              f"({total / elapsed:.0f}/s) while a socket that never reads was joined to the same group")

        host.wait_log("stream socket dropped", timeout=10)
        slow_got = 0
        with pytest.raises(ConnectionClosed):
            while True:  # what was in flight before the drop, then the end of the socket
                await asyncio.wait_for(slow.recv(), 10)
                slow_got += 1
        assert slow_got < total
        assert len(received) == total


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def test_fan_out_to_500_sockets(start_host, tmp_path: Path) -> None:
    host = start_host(write_project(tmp_path, {**PROJECT, "steppe.toml": 'streams = "memory"\n'}))
    sockets = int(os.environ.get("STEPPE_FANOUT_SOCKETS", "500"))
    clients = [StreamClient(ws_url(host), connect_timeout=30) for _ in range(sockets)]
    try:
        started = time.monotonic()
        for i in range(0, sockets, 50):  # 50 handshakes at a time
            await asyncio.gather(*(c.start() for c in clients[i:i + 50]))
        subs = [await c.subscribe_group("todos", "fan") for c in clients]
        await asyncio.gather(*(s.wait_synced(30) for s in subs))
        print(f"\nfan-out: {sockets} sockets connected and joined in {time.monotonic() - started:.2f} s")

        # each receipt: (socket, n, wall-clock time of receipt, sentAt from the handler)
        receipts: list[tuple[int, int, float, float]] = []
        for index, sub in enumerate(subs):
            sub.on_change(lambda items, index=index: receipts.append(
                (index, items[0]["n"], time.time(), items[0]["sentAt"])))

        async with httpx.AsyncClient(base_url=host.url, timeout=30) as http:
            async def round_trip(n: int, count: int = 1) -> tuple[float, float, float]:
                """Set `count` updates in one API call; wait until every socket has them all."""
                before = len(receipts)
                call_start = time.time()
                response = await http.post("/py/stamp/fan/x", json={"n": n, "count": count})
                call_end = time.time()
                assert response.status_code == 200
                await wait_for(lambda: len(receipts) - before >= sockets * count, 30,
                               f"{sockets * count} deliveries of update {n}")
                return call_start, call_end, max(r[2] for r in receipts[before:])

            # one update each: every socket gets it exactly once
            await round_trip(0)
            assert sorted(r[0] for r in receipts) == list(range(sockets))
            assert {r[1] for r in receipts} == {0}

            # latency from the set (the handler's clock right before it) to receipt, over 10 single updates
            receipts.clear()
            from_set: list[float] = []
            from_return: list[float] = []
            spans: list[float] = []
            for n in range(1, 11):
                before = len(receipts)
                call_start, call_end, last = await round_trip(n)
                batch = receipts[before:]
                from_set += [(r[2] - r[3]) * 1000 for r in batch]
                from_return += [(r[2] - call_end) * 1000 for r in batch]
                spans.append(last - min(r[3] for r in batch))
            assert len(receipts) == sockets * 10

            # a burst: 20 updates in one call, 20 x N messages
            receipts.clear()
            call_start, _, last = await round_trip(100, count=20)
            burst_rate = sockets * 20 / (last - call_start)
            per_socket = {}
            for index, n, *_ in receipts:
                per_socket.setdefault(index, []).append(n)
            assert all(ns == list(range(100, 120)) for ns in per_socket.values()) and len(per_socket) == sockets

        single_rate = sockets / statistics.median(spans)
        print(f"fan-out to {sockets} sockets (host and this Python test client share 2 cores):\n"
              f"  one update to all: median {statistics.median(spans) * 1000:.1f} ms from set to last receipt "
              f"= {single_rate:.0f} messages/s\n"
              f"  burst of 20 updates: {sockets * 20} messages in {(last - call_start) * 1000:.0f} ms "
              f"= {burst_rate:.0f} messages/s (from the API call to the last receipt)\n"
              f"  latency from set to receipt: p50 {percentile(from_set, 50):.1f} ms, "
              f"p99 {percentile(from_set, 99):.1f} ms, max {max(from_set):.1f} ms\n"
              f"  latency from the API call returning to receipt: p50 {percentile(from_return, 50):.1f} ms, "
              f"p99 {percentile(from_return, 99):.1f} ms (negative: before the response arrived)")
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
