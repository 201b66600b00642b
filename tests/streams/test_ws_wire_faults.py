"""The stream WebSocket against clients that send what they should not: a leave naming another room than its
subscription's, and text frames that are not UTF-8. Real host, real `websockets` clients and raw frames."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from conftest import RunningHost, write_project

PROJECT = {
    "steps/notes_stream.py": 'config = {"name": "notes", "schema": {"type": "object"}}\n',
    "steps/todos_stream.py": 'config = {"name": "todos", "schema": {"type": "object"}}\n',
    "steps/put_step.py": """
        config = {"type": "api", "name": "Put", "path": "/put/:stream/:group/:id", "method": "POST", "emits": []}

        async def handler(req, ctx):
            p = req["pathParams"]
            stream = ctx.streams.notes if p["stream"] == "notes" else ctx.streams.todos
            return {"status": 201, "body": await stream.set(p["group"], p["id"], {"v": req["body"]["v"]})}
    """,
}


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    running = RunningHost(write_project(tmp_path_factory.mktemp("wire"), PROJECT), [], None).wait_ready()
    yield running
    running.stop()


async def recv(ws: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


def message(kind: str, stream: str, group: str, sub: str) -> str:
    return json.dumps({"type": kind, "data": {"streamName": stream, "groupId": group, "subscriptionId": sub}})


async def test_a_leave_naming_another_room_than_its_subscription_leaves_only_that_room(host: RunningHost) -> None:
    """Seen: join {notes, g1, "dup"}, join {todos, g1, "dup"} (which replaces it), then leave {notes, g1, "dup"}:
    the todos subscription was removed, and the client stopped getting its changes."""
    async with connect(host.url.replace("http", "ws") + "/") as ws:
        await ws.send(message("join", "notes", "g1", "dup"))
        assert (await recv(ws))["event"]["type"] == "sync"
        await ws.send(message("join", "todos", "g1", "dup"))
        assert (await recv(ws))["event"]["type"] == "sync"
        await ws.send(message("leave", "notes", "g1", "dup"))
        async with httpx.AsyncClient() as client:
            r = await client.post(f"{host.url}/put/todos/g1/t1", json={"v": 1})
        assert r.status_code == 201, r.text
        change = await recv(ws)
        assert (change["streamName"], change["event"]["type"], change["event"]["data"]) == (
            "todos", "create", {"v": 1, "id": "t1"})


def test_text_frames_that_are_not_utf8_close_the_socket_without_a_traceback_in_the_log(host: RunningHost) -> None:
    """Seen: each text frame of invalid UTF-8 (closed 1007, as it should be) wrote uvicorn's ERROR line and a
    full UnicodeDecodeError traceback to the host's log: any client could flood it."""
    before = host.logs().count("Traceback")
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", host.port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            head = sock.recv(4096)
            assert head.startswith(b"HTTP/1.1 101"), head
            payload = b'{"x":"\xff"}'
            sock.sendall(bytes([0x81, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)  # masked, all-zero mask
            closing = sock.recv(64)
            assert closing[:1] == b"\x88" and int.from_bytes(closing[2:4], "big") == 1007, closing
    time.sleep(0.3)  # uvicorn logs before it sends the close frame; the log file is flushed by then
    assert host.logs().count("Traceback") == before, host.logs()[-3000:]
    assert httpx.get(f"{host.url}/__steppe/health").json()["status"] == "ok"
