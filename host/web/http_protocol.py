"""uvicorn's httptools protocol with a bound on the request head: httptools keeps no limit of its own and
gathers a huge header slowly in memory (68 MB took most of a minute), so a connection whose head grows past
the bound is answered 431 JSON and closed while it is still sending. Heads under the bound but over
`max_headers` reach the host, which answers the same 431 itself (host/web/limits.py HeaderLimit).

Its writes are corked (CorkedTransport): uvicorn writes a response's head and its body separately, two
send() calls where one does; on loopback each send also runs the receiver's TCP work, and the two were the
largest single cost of an API request in the host's profile. A complete response leaves at once, in one
write: held for the loop's next turn, it waited behind every callback queued meanwhile (under load, the
other connections' work) and cost one request at a time an extra loop turn. The keep-alive timeout armed
then shares a timer with the other connections idling into the same window (host/web/keep_alive.py)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson

from ..event import new_id
from .keep_alive import keep_alive_timers

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # no httptools: uvicorn's h11 protocol is used, bounded by h11_max_incomplete_event_size
    HttpToolsProtocol = None  # type: ignore[assignment,misc]


def head_bound(max_headers: int) -> int:
    """Bytes of request line and headers a connection may send before the parser refuses it outright."""
    return 2 * max_headers + 16 * 1024


def refusal_431(max_headers: int) -> bytes:
    body = orjson.dumps({"error": "Request Header Fields Too Large", "limit": max_headers,
                         "reason": f"request headers total more than {max_headers} bytes (max_headers)",
                         "traceId": new_id()})
    return (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
            b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


class CorkedTransport:
    """A transport whose writes made in one turn of the event loop go out as one write at its next turn,
    or sooner by `flush` (a response's head and body, flushed when the response is complete; the parts of a
    streamed one). Closing sends what is held first. Everything else is the real transport's."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.raw, self._loop = transport, loop
        self._held: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(data)

    def flush(self) -> None:
        if self._held:
            data = b"".join(self._held) if len(self._held) > 1 else self._held[0]
            self._held.clear()
            if not self.raw.is_closing():
                self.raw.write(data)

    def close(self) -> None:
        self.flush()
        self.raw.close()

    def write_eof(self) -> None:
        self.flush()
        self.raw.write_eof()

    def get_write_buffer_size(self) -> int:
        return self.raw.get_write_buffer_size() + sum(map(len, self._held))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


def bounded_protocol(max_headers: int) -> Any:
    """The protocol class for uvicorn.Config(http=...), or "h11" when httptools is not installed."""
    if HttpToolsProtocol is None:
        return "h11"
    bound = head_bound(max_headers)

    class BoundedHttpToolsProtocol(HttpToolsProtocol):  # type: ignore[misc,valid-type]
        _head_bytes: int | None = 0  # bytes received while reading a request head; None while in a body

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            # uvicorn formats every request's access-log line (path quoting, client address) before the logger
            # drops it at the host's `warning` level; format only when the line would be written
            self.access_log = self.access_log and self.access_logger.isEnabledFor(logging.INFO)

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)  # flow control and addresses from the real transport
            self.transport = CorkedTransport(transport, self.loop)  # type: ignore[assignment]  # duck-typed

        def handle_websocket_upgrade(self) -> None:
            if isinstance(self.transport, CorkedTransport):  # the socket's protocol writes as it pleases
                self.transport.flush()
                self.transport = self.transport.raw
            super().handle_websocket_upgrade()

        def data_received(self, data: bytes) -> None:
            if self._head_bytes is not None:
                self._head_bytes += len(data)
                if self._head_bytes > bound:
                    self.transport.write(refusal_431(max_headers))
                    self.transport.close()
                    return
            super().data_received(data)

        def on_headers_complete(self) -> None:
            self._head_bytes = None
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._head_bytes = 0
            super().on_message_complete()

        def on_response_complete(self) -> None:
            if isinstance(self.transport, CorkedTransport):  # the response's head and body, in one write now
                self.transport.flush()
            # uvicorn arms the keep-alive timeout on `self.loop` here: a timer per response, unless shared
            loop, self.loop = self.loop, keep_alive_timers(self.loop)  # type: ignore[assignment]  # duck-typed
            try:
                super().on_response_complete()
            finally:
                self.loop = loop

    return BoundedHttpToolsProtocol
