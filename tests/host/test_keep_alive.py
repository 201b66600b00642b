"""The HTTP server's keep-alive timeouts (host/web/keep_alive.py, armed by host/web/http_protocol.py): an idle
connection is closed after `timeout_keep_alive`, never before and at most a window later; a connection that
keeps sending stays open; requests one after another share one loop timer instead of one each."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
import uvicorn

from steppe.web.http_protocol import HttpToolsProtocol, bounded_protocol
from steppe.web.keep_alive import SLOT, keep_alive_timers

pytestmark = pytest.mark.skipif(HttpToolsProtocol is None, reason="httptools is not installed")

REQUEST = b"GET / HTTP/1.1\r\nhost: test\r\n\r\n"


async def hello(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def serving(timeout_keep_alive: float) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(hello, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                                           http=bounded_protocol(8192, 10, 60), timeout_keep_alive=timeout_keep_alive))
    task = asyncio.get_running_loop().create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    return server, task, port


async def ask(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(REQUEST)
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert await reader.readexactly(2) == b"ok"


def test_an_idle_connection_is_closed_after_the_timeout_and_a_busy_one_is_not():
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server, task, port = await serving(timeout_keep_alive=0.4)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            started = idle_from = loop.time()
            while idle_from - started < 1.0:  # busy for over twice the timeout, a request every 0.1 s
                await asyncio.sleep(0.1)
                await ask(reader, writer)
                idle_from = loop.time()
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
            idle = loop.time() - idle_from
            assert 0.4 - 0.02 <= idle <= 0.4 + SLOT + 0.5, idle
            writer.close()
        finally:
            server.should_exit = True
            await task

    asyncio.run(main())


def test_requests_one_after_another_share_one_timer():
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server, task, port = await serving(timeout_keep_alive=5)
        armed: list[str] = []  # loop timers armed for keep-alive timeouts
        call_at, call_later = loop.call_at, loop.call_later

        def counting(arm: Any) -> Any:
            def counted(when: float, callback: Any, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
                if getattr(callback, "__name__", "") in ("timeout_keep_alive_handler", "_expire"):
                    armed.append(callback.__name__)
                return arm(when, callback, *args, **kwargs)  # type: ignore[no-any-return]
            return counted

        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await ask(reader, writer)
            loop.call_at, loop.call_later = counting(call_at), counting(call_later)  # type: ignore[method-assign]
            for _ in range(50):
                await ask(reader, writer)
            assert len(armed) <= 4, armed  # a new window once or twice in that time, not a timer per request
            assert len(keep_alive_timers(loop)) <= 2
            writer.close()
        finally:
            loop.call_at, loop.call_later = call_at, call_later  # type: ignore[method-assign]
            server.should_exit = True
            await task

    asyncio.run(main())
