"""uvicorn's httptools protocol with a bound on the request head: httptools keeps no limit of its own and
gathers a huge header slowly in memory (68 MB took most of a minute), so a connection whose head grows past
the bound is answered 431 JSON and closed while it is still sending. Heads under the bound but over
`max_headers` reach the host, which answers the same 431 itself (host/web/limits.py HeaderLimit).

Its writes are corked (CorkedTransport): uvicorn writes a response's head and its body separately, two
send() calls where one does; on loopback each send also runs the receiver's TCP work, and the two were the
largest single cost of an API request in the host's profile. A complete response leaves at once, in one
write: held for the loop's next turn, it waited behind every callback queued meanwhile (under load, the
other connections' work) and cost one request at a time an extra loop turn. The keep-alive timeout armed
then shares a timer with the other connections idling into the same window (host/web/keep_alive.py).

A request's head and body must arrive in time (host/web/read_deadlines.py): a late one is answered 408 JSON
and its connection closed; a connection that sent nothing is closed without an answer."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson

from ..event import new_id
from ..slot_timers import one_per_loop
from .keep_alive import keep_alive_timers
from .read_deadlines import BODY, HEAD, IDLE, ReadDeadlines

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # no httptools: uvicorn's h11 protocol is used, bounded by h11_max_incomplete_event_size
    HttpToolsProtocol = None  # type: ignore[assignment,misc]


def head_bound(max_headers: int) -> int:
    """Bytes of request line and headers a connection may send before the parser refuses it outright."""
    return 2 * max_headers + 16 * 1024


def request_line_bound(max_headers: int) -> int:
    """Bytes of request line (method, path and query) answered 414 past: max_headers, and under the ~64 KiB
    past which httptools stops with a bare parse error."""
    return min(max_headers, 63 * 1024)


def refusal(status: int, phrase: str, **fields: Any) -> bytes:
    """A JSON error answered by the connection itself (the request never reaches the app), which then closes."""
    body = orjson.dumps({"error": phrase, **fields, "traceId": new_id()})
    return (b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: %d\r\n\r\n"
            % (status, phrase.encode(), len(body))) + body


def refusal_431(max_headers: int) -> bytes:
    return refusal(431, "Request Header Fields Too Large", limit=max_headers,
                   reason=f"request headers total more than {max_headers} bytes (max_headers)")


def refusal_414(limit: int) -> bytes:
    return refusal(414, "URI Too Long", limit=limit,
                   reason=f"the request line (method, path and query) is longer than {limit} bytes")


def refusal_408(phase: int, limit: float) -> bytes:
    part, setting = ("head", "header_timeout") if phase == HEAD else ("body", "body_timeout")
    return refusal(408, "Request Timeout", limit=limit,
                   reason=f"the request's {part} did not arrive within {limit:g} s ({setting})")


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


def bounded_protocol(max_headers: int, header_timeout: float, body_timeout: float) -> Any:
    """The protocol class for uvicorn.Config(http=...), or "h11" when httptools is not installed."""
    if HttpToolsProtocol is None:
        return "h11"
    bound = head_bound(max_headers)
    line_bound = request_line_bound(max_headers)
    sweeps: dict[asyncio.AbstractEventLoop, ReadDeadlines] = {}

    def make_sweep(loop: asyncio.AbstractEventLoop) -> ReadDeadlines:
        return ReadDeadlines(loop, header_timeout, body_timeout)

    class BoundedHttpToolsProtocol(HttpToolsProtocol):  # type: ignore[misc,valid-type]
        _head_bytes: int | None = 0  # bytes received while reading a request head; None while in a body
        _line_done = False  # the request line of the head being read has ended
        read_phase = IDLE  # what the client is expected to send now (read_deadlines.py)
        read_since = 0.0
        _deadlines: ReadDeadlines | None = None

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            # uvicorn formats every request's access-log line (path quoting, client address) before the logger
            # drops it at the host's `warning` level; format only when the line would be written
            self.access_log = self.access_log and self.access_logger.isEnabledFor(logging.INFO)

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)  # flow control and addresses from the real transport
            self.transport = CorkedTransport(transport, self.loop)  # type: ignore[assignment]  # duck-typed
            self.read_phase, self.read_since = HEAD, self.loop.time()  # the first head is due
            self._deadlines = one_per_loop(sweeps, self.loop, make_sweep)
            self._deadlines.watch(self)

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_watching()
            super().connection_lost(exc)

        def _stop_watching(self) -> None:
            self.read_phase = IDLE
            if self._deadlines is not None:
                self._deadlines.forget(self)

        def read_paused(self) -> bool:
            return bool(self.flow.read_paused)

        def read_timed_out(self, phase: int, limit: float) -> None:
            if self.transport.is_closing():
                return
            # nothing to answer a connection that sent nothing, nor a request whose answer has begun. While a head
            # is read, `cycle` is still the previous request's (uvicorn makes one per head): a 408 may follow its
            # answer once complete, but must not cut into it or go ahead of it
            cycle = self.cycle
            if phase == BODY:
                answer = cycle is None or not cycle.response_started
            else:
                answer = bool(self._head_bytes) and (cycle is None or cycle.response_complete)
            if answer:
                self.transport.write(refusal_408(phase, limit))
            self.transport.close()

        def send_400_response(self, msg: str) -> None:  # uvicorn's is plain text
            self.transport.write(refusal(400, "Bad Request", reason=f"not a valid HTTP/1.1 request ({msg})"))
            self.transport.close()

        def handle_websocket_upgrade(self) -> None:
            self._stop_watching()  # the socket's protocol takes the connection over
            if isinstance(self.transport, CorkedTransport):  # the socket's protocol writes as it pleases
                self.transport.flush()
                self.transport = self.transport.raw
            super().handle_websocket_upgrade()

        def data_received(self, data: bytes) -> None:
            if self._head_bytes is not None:
                if not self._head_bytes and self.read_phase == IDLE:  # a kept-alive connection's next head
                    self.read_phase, self.read_since = HEAD, self.loop.time()
                before = self._head_bytes
                self._head_bytes += len(data)
                if not self._line_done:  # the request line: httptools refuses one past ~64 KiB as "invalid"
                    nl = data.find(b"\n")
                    if before + (nl if nl >= 0 else len(data)) > line_bound:
                        self.transport.write(refusal_414(line_bound))
                        self.transport.close()
                        return
                    self._line_done = nl >= 0
                if self._head_bytes > bound:
                    self.transport.write(refusal_431(max_headers))
                    self.transport.close()
                    return
            super().data_received(data)

        def on_headers_complete(self) -> None:
            self._head_bytes = None
            self.read_phase, self.read_since = BODY, self.loop.time()
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._head_bytes, self._line_done = 0, False
            self.read_phase = IDLE
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
