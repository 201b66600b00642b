"""The stream WebSocket against a real uvicorn server (in a thread) and real `websockets` clients."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Coroutine, Iterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from steppe.streams import (
    MemoryStreamStore,
    StreamHub,
    Streams,
    StreamSocketLimits,
    make_stream_socket_endpoint,
)

NAMES = {"todos", "chat", "big"}


class SlowSnapshots(MemoryStreamStore):
    """Reads that take a while, as a store off the event loop would: changes can land meanwhile."""

    async def get_group(self, stream: str, group_id: str) -> list[dict[str, Any]]:
        await asyncio.sleep(0.3)
        return await super().get_group(stream, group_id)


class Server:
    def __init__(self) -> None:
        self.hub = StreamHub()
        self.streams = Streams(MemoryStreamStore(), self.hub, NAMES)
        self.slow_streams = Streams(SlowSnapshots(), self.hub, NAMES)
        self.auth_requests: list[dict[str, Any]] = []
        self.access_checks: list[tuple[str, dict, Any]] = []
        self.loop: asyncio.AbstractEventLoop | None = None

        async def deny_secret(stream: str, subscription: dict, auth: Any) -> bool:
            self.access_checks.append((stream, subscription, auth))
            if subscription["groupId"] == "explode":
                raise RuntimeError("canAccess crashed")
            return subscription["groupId"] != "secret"

        async def authenticate(request: dict[str, Any]) -> dict[str, Any]:
            self.auth_requests.append(request)
            protocol = request["headers"].get("sec-websocket-protocol", "")
            token = protocol.split(",", 1)[1].strip() if protocol.startswith("Authorization,") else None
            token = token or parse_qs(urlsplit(request["url"]).query).get("authToken", [None])[0]
            if token not in ("ann", "bob"):
                raise PermissionError("bad token")
            return {"user": token}

        async def own_group_only(stream: str, subscription: dict, auth: Any) -> bool:
            return subscription["groupId"] == auth["user"]

        tiny = StreamSocketLimits(max_subscriptions=2, max_message_bytes=1024, send_queue=4)

        @asynccontextmanager
        async def lifespan(app: Starlette):
            self.loop = asyncio.get_running_loop()
            yield

        self.app = Starlette(lifespan=lifespan, routes=[
            WebSocketRoute("/auth/{path:path}", make_stream_socket_endpoint(
                self.streams, self.hub, authenticate=authenticate, can_access=own_group_only)),
            WebSocketRoute("/tiny/{path:path}", make_stream_socket_endpoint(
                self.streams, self.hub, limits=tiny)),
            WebSocketRoute("/slow/{path:path}", make_stream_socket_endpoint(self.slow_streams, self.hub)),
            WebSocketRoute("/{path:path}", make_stream_socket_endpoint(
                self.streams, self.hub, can_access=deny_secret)),
        ])

    def start(self) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"ws://127.0.0.1:{sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        for _ in range(500):
            if self.server.started:
                return
            threading.Event().wait(0.01)
        raise RuntimeError("uvicorn did not start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    async def call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run a coroutine on the server's loop (where the hub and the sockets live)."""
        assert self.loop is not None
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    s = Server()
    s.start()
    yield s
    s.stop()


async def recv(ws: ClientConnection, timeout: float = 3.0) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def join(
    ws: ClientConnection, stream: str, group: str, id: str | None = None, sub: str | None = None
) -> None:
    data = {"streamName": stream, "groupId": group, "subscriptionId": sub or f"{stream}/{group}/{id}"}
    if id is not None:
        data["id"] = id
    await ws.send(json.dumps({"type": "join", "data": data}))


def error_code(message: dict[str, Any]) -> str:
    assert message["event"]["type"] == "event" and message["event"]["event"]["type"] == "error", message
    return message["event"]["event"]["data"]["code"]


async def test_join_sends_sync_of_item_and_group(server: Server) -> None:
    await server.call(server.streams.set("todos", "sync", "1", {"title": "a", "done": False}))
    await server.call(server.streams.set("todos", "sync", "2", {"title": "b", "done": 0}))
    async with connect(server.url + "/any/path") as ws:
        await join(ws, "todos", "sync", "1")
        item = await recv(ws)
        assert item["streamName"] == "todos" and item["groupId"] == "sync" and item["id"] == "1"
        assert isinstance(item["timestamp"], int)
        assert item["event"] == {"type": "sync", "data": {"title": "a", "done": False, "id": "1"}}

        await join(ws, "todos", "sync")
        group = await recv(ws)
        assert "id" not in group
        assert group["event"] == {"type": "sync", "data": [
            {"title": "a", "done": False, "id": "1"}, {"title": "b", "done": 0, "id": "2"}]}

        await join(ws, "todos", "sync", "missing")  # no sync for a missing item
        await join(ws, "todos", "empty-group")
        assert (await recv(ws))["event"] == {"type": "sync", "data": []}


async def test_changes_reach_item_and_group_subscribers(server: Server) -> None:
    async with connect(server.url) as item_ws, connect(server.url + "/") as group_ws:
        await join(item_ws, "todos", "live", "1")  # missing yet: no sync, but subscribed
        await join(item_ws, "todos", "live-barrier")
        await recv(item_ws)
        await join(group_ws, "todos", "live")
        assert (await recv(group_ws))["event"]["data"] == []

        await server.call(server.streams.set("todos", "live", "1", {"v": 1}))
        await server.call(server.streams.set("todos", "live", "1", {"v": 2}))
        await server.call(server.streams.set("todos", "live", "2", {"v": 3}))
        await server.call(server.streams.delete("todos", "live", "1"))

        item_events = [await recv(item_ws) for _ in range(3)]
        group_events = [await recv(group_ws) for _ in range(4)]
        assert [(m["id"], m["event"]) for m in item_events] == [
            ("1", {"type": "create", "data": {"v": 1, "id": "1"}}),
            ("1", {"type": "update", "data": {"v": 2, "id": "1"}}),
            ("1", {"type": "delete", "data": {"v": 2, "id": "1"}}),
        ]
        assert [(m["id"], m["event"]["type"]) for m in group_events] == [
            ("1", "create"), ("1", "update"), ("2", "create"), ("1", "delete")]
        assert all(m["streamName"] == "todos" and m["groupId"] == "live" for m in group_events)


async def test_send_delivers_an_event(server: Server) -> None:
    async with connect(server.url) as ws:
        await join(ws, "chat", "room")
        await recv(ws)
        event = {"type": "typing", "data": {"who": 1}}
        await server.call(server.streams.send("chat", {"groupId": "room"}, event))
        message = await recv(ws)
        assert message["streamName"] == "chat" and message["groupId"] == "room" and "id" not in message
        assert message["event"] == {"type": "event", "event": {"type": "typing", "data": {"who": 1}}}


async def test_one_socket_in_item_and_group_rooms_gets_each_change_once(server: Server) -> None:
    async with connect(server.url) as ws:
        await join(ws, "todos", "both")
        await recv(ws)
        await join(ws, "todos", "both", "1")
        await join(ws, "todos", "both-barrier")
        await recv(ws)
        await server.call(server.streams.set("todos", "both", "1", {}))
        await server.call(server.streams.set("todos", "both-barrier", "x", {}))
        assert (await recv(ws))["groupId"] == "both"
        assert (await recv(ws))["groupId"] == "both-barrier"


async def test_leave_stops_events(server: Server) -> None:
    async with connect(server.url) as ws:
        await join(ws, "todos", "leave-a", sub="a")
        await join(ws, "todos", "leave-b", sub="b")
        await recv(ws), await recv(ws)
        await ws.send(json.dumps({"type": "leave", "data": {
            "streamName": "todos", "groupId": "leave-a", "subscriptionId": "a"}}))
        await join(ws, "todos", "leave-barrier")
        await recv(ws)  # the leave was handled before this join
        await server.call(server.streams.set("todos", "leave-a", "1", {}))
        await server.call(server.streams.set("todos", "leave-b", "1", {}))
        assert (await recv(ws))["groupId"] == "leave-b"
        assert server.hub.subscriber_count("todos", "leave-a") == 0


async def test_unknown_stream_gets_an_error_event(server: Server) -> None:
    async with connect(server.url) as ws:
        await join(ws, "nope", "g", "1")
        message = await recv(ws)
        assert error_code(message) == "STREAM_NOT_FOUND"
        assert (message["streamName"], message["groupId"], message["id"]) == ("nope", "g", "1")


async def test_can_access_denial_and_failure(server: Server) -> None:
    async with connect(server.url) as ws:
        await join(ws, "todos", "secret")
        assert error_code(await recv(ws)) == "STREAM_ACCESS_DENIED"
        await join(ws, "todos", "explode", "7")  # a crashing canAccess denies
        assert error_code(await recv(ws)) == "STREAM_ACCESS_DENIED"
        await join(ws, "todos", "public")
        assert (await recv(ws))["event"]["type"] == "sync"
    assert ("todos", {"groupId": "explode", "id": "7"}, None) in server.access_checks
    assert server.hub.subscriber_count("todos", "secret") == 0


async def test_authenticate_with_subprotocol_token(server: Server) -> None:
    async with connect(server.url + "/auth/", subprotocols=["Authorization", "ann"]) as ws:
        assert ws.subprotocol == "Authorization"
        await join(ws, "todos", "ann")  # can_access sees the auth context: own group only
        assert (await recv(ws))["event"]["type"] == "sync"
        await join(ws, "todos", "bob")
        assert error_code(await recv(ws)) == "STREAM_ACCESS_DENIED"
    request = server.auth_requests[-1]
    assert request["headers"]["sec-websocket-protocol"] == "Authorization, ann"
    assert all(name == name.lower() for name in request["headers"])


async def test_authenticate_with_query_token(server: Server) -> None:
    async with connect(server.url + "/auth/x?authToken=bob") as ws:
        assert ws.subprotocol is None
        await join(ws, "todos", "bob")
        assert (await recv(ws))["event"]["type"] == "sync"
    assert server.auth_requests[-1]["url"].endswith("/auth/x?authToken=bob")


@pytest.mark.parametrize("suffix,protocols", [
    ("/auth/", None), ("/auth/?authToken=eve", None), ("/auth/", ["Authorization", "eve"])])
async def test_authenticate_refusal_is_http_401(
    server: Server, suffix: str, protocols: list[str] | None
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(server.url + suffix, subprotocols=protocols):
            pass
    assert refused.value.response.status_code == 401


async def test_malformed_messages_get_error_events(server: Server) -> None:
    async with connect(server.url) as ws:
        for bad in ["not json", "[1, 2]", '{"type": "subscribe", "data": {}}', '{"type": "join"}',
                    '{"type": "join", "data": {"groupId": "g"}}',
                    '{"type": "join", "data": {"streamName": "todos", "groupId": 5}}',
                    '{"type": "leave", "data": {"streamName": "todos", "groupId": "g", "id": 1}}']:
            await ws.send(bad)
            assert error_code(await recv(ws)) == "INVALID_MESSAGE", bad
        await ws.send(b"\xff\xfe")
        assert error_code(await recv(ws)) == "INVALID_MESSAGE"
        binary_join = {"type": "join", "data": {"streamName": "todos", "groupId": "bin"}}
        await ws.send(json.dumps(binary_join).encode())
        assert (await recv(ws))["event"]["type"] == "sync"  # still connected, binary JSON accepted


async def test_oversize_message_closes_with_1009(server: Server) -> None:
    async with connect(server.url + "/tiny/") as ws:
        await ws.send("x" * 2000)
        with pytest.raises(ConnectionClosed) as closed:
            await recv(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_subscription_limit(server: Server) -> None:
    async with connect(server.url + "/tiny/") as ws:
        await join(ws, "todos", "lim-1")
        await join(ws, "todos", "lim-2")
        await recv(ws), await recv(ws)
        await join(ws, "todos", "lim-2")  # same subscription id again replaces, within the limit
        await recv(ws)
        await join(ws, "todos", "lim-3")
        assert error_code(await recv(ws)) == "TOO_MANY_SUBSCRIPTIONS"
        await ws.send(json.dumps({"type": "leave", "data": {"streamName": "todos", "groupId": "lim-1"}}))
        await join(ws, "todos", "lim-3")
        assert (await recv(ws))["event"]["type"] == "sync"


async def test_changes_during_a_slow_snapshot_follow_the_sync(server: Server) -> None:
    async with connect(server.url + "/slow/") as ws:
        await join(ws, "todos", "slow")
        await asyncio.sleep(0.1)  # the snapshot is loading
        await server.call(server.slow_streams.set("todos", "slow", "1", {"v": 1}))
        sync, create = await recv(ws), await recv(ws)
        assert sync["event"]["type"] == "sync"
        assert create["event"] == {"type": "create", "data": {"v": 1, "id": "1"}}


async def test_slow_consumer_is_dropped_while_a_fast_one_gets_everything(server: Server) -> None:
    # 600 x 16 kB outgrows the kernel's socket buffers (4 MB at most by default) several times over
    count, pad = 600, "x" * 16_000
    # a small receive buffer, no compression (the padding would shrink to nothing) and a client that
    # stops reading: the server's sends back up quickly
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", int(server.url.rsplit(":", 1)[1])))
    async with connect(server.url + "/tiny/", sock=raw, max_queue=1, compression=None) as slow, \
            connect(server.url + "/tiny/", max_size=None) as fast:
        for ws in (slow, fast):
            await join(ws, "big", "flood")
            assert (await recv(ws))["event"]["data"] == []

        received: list[int] = []

        async def flood() -> None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 20
            for i in range(count):
                await server.streams.set("big", "flood", str(i), {"i": i, "pad": pad})
                # lockstep with the fast reader, so that only the slow socket can back up
                while len(received) <= i and loop.time() < deadline:
                    await asyncio.sleep(0.001)

        async def read_fast() -> None:
            for _ in range(count):
                received.append((await recv(fast, 10))["event"]["data"]["i"])

        await asyncio.gather(read_fast(), server.call(flood()))
        assert received == list(range(count))
        assert server.hub.subscriber_count("big", "flood") == 1  # only the fast socket is left

        slow_got = 0
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await recv(slow, 10)
                slow_got += 1
        assert slow_got < count
        # 1008 when the close frame got out before the socket was abandoned, else a bare disconnect
        assert closed.value.rcvd is None or closed.value.rcvd.code == 1008
