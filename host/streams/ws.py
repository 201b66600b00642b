"""The stream WebSocket: browsers (and Motia's React/Node clients) join rooms and receive changes live.

Wire (Motia 0.x's, which its browser/React/Node clients speak): the client sends
`{"type": "join" | "leave", "data": {"streamName", "groupId", "id"?, "subscriptionId"}}`; the server
sends envelopes `{"timestamp", "streamName", "groupId", "id"?, "event": E}` where E is a `sync` on join
(the item, or the group's list; nothing for a missing item), a `create` / `update` / `delete` with the
item, or `{"type": "event", "event": {"type", "data"}}` for `streams.send` and for errors
(`{"type": "error", "data": {"code", "message"}}`).

Each connection has one bounded outgoing queue drained by one writer task, so messages keep their order
and a socket that stops reading only fills its own queue: past the limit it is dropped (close 1008),
and the publisher never waits for it. The queue is bounded in messages and in characters of JSON text
(about bytes): many small messages or a few large ones. Dead peers are found by the server's WebSocket ping (uvicorn's
`ws_ping_interval` / `ws_ping_timeout`, 20 s each by default), not here. Uvicorn's `ws_max_size` should
be at least `max_message_bytes`, so that oversize messages meet this endpoint's 1009 rather than
differ by server.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..headers import request_headers
from .hub import Room, StreamHub, Streams, encode_message, next_timestamp

log = logging.getLogger("steppe.streams")

Authenticate = Callable[[dict[str, Any]], Awaitable[Any]]
CanAccess = Callable[[str, dict[str, Any], Any], Awaitable[bool]]

AUTH_SUBPROTOCOL = "Authorization"  # clients pass their token as the second "subprotocol"

_CLOSE_REASONS = {1008: "send queue overflow", 1009: "message too big", 1011: "internal error"}


@dataclass(frozen=True)
class StreamSocketLimits:
    max_subscriptions: int = 100  # per socket
    max_message_bytes: int = 64 * 1024  # per client message; larger closes the socket with 1009
    send_queue: int = 1000  # messages waiting for one socket; overflow drops the socket
    # characters of JSON text (about bytes) waiting for one socket; overflow drops it too (one message
    # larger than this is still sent when nothing else waits)
    send_queue_bytes: int = 8 * 1024 * 1024
    close_timeout: float = 1.0  # seconds to try a polite close on a socket that no longer reads


class StreamSocketEndpoint:
    """An ASGI app for websocket scopes; mount with `WebSocketRoute("/{path:path}", endpoint)`.

    `authenticate(request {headers (lower-cased), url})` returns the auth context of the socket; raising
    refuses it with HTTP 401. `can_access(streamName, {groupId, id?}, authContext)` decides each join;
    raising counts as a refusal.
    """

    def __init__(
        self,
        streams: Streams,
        hub: StreamHub,
        authenticate: Authenticate | None = None,
        can_access: CanAccess | None = None,
        limits: StreamSocketLimits | None = None,
    ) -> None:
        self.streams = streams
        self.hub = hub
        self.authenticate = authenticate
        self.can_access = can_access
        # the web layer builds this endpoint; the host hands its settings over through the hub
        self.limits = limits or getattr(hub, "socket_limits", None) or StreamSocketLimits()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive, send)
        auth_context = None
        if self.authenticate is not None:
            request = {"headers": request_headers(websocket.scope["headers"]), "url": str(websocket.url)}
            try:
                auth_context = await self.authenticate(request)
            except Exception as exc:
                log.info("stream socket refused: %s: %s", type(exc).__name__, exc)
                await _refuse(websocket)
                return
        offered = scope.get("subprotocols") or []
        try:
            await websocket.accept(subprotocol=AUTH_SUBPROTOCOL if AUTH_SUBPROTOCOL in offered else None)
        except WebSocketDisconnect:
            return  # the client left while authenticate ran
        await _Connection(self, websocket, auth_context).run()


def make_stream_socket_endpoint(
    streams: Streams,
    hub: StreamHub,
    authenticate: Authenticate | None = None,
    can_access: CanAccess | None = None,
    limits: StreamSocketLimits | None = None,
) -> StreamSocketEndpoint:
    return StreamSocketEndpoint(streams, hub, authenticate, can_access, limits)


async def _refuse(websocket: WebSocket) -> None:
    if "websocket.http.response" in (websocket.scope.get("extensions") or {}):
        await websocket.send_denial_response(JSONResponse({"error": "Unauthorized"}, status_code=401))
    else:
        await websocket.close(code=4401)  # servers without denial responses answer 403 to this


def _error(code: str, message: str, stream: Any = None, group_id: Any = None, id: Any = None) -> str:
    # address fields only when they are strings, so that clients can route the error to the
    # subscription that caused it
    def addr(value: Any) -> str | None:
        return value if isinstance(value, str) else None

    event = {"type": "event", "event": {"type": "error", "data": {"code": code, "message": message}}}
    return encode_message(addr(stream), addr(group_id), addr(id), event)


def _too_large(text: str, limit: int) -> bool:
    return len(text) > limit or (len(text) * 4 > limit and len(text.encode()) > limit)


class _Connection:
    """One accepted socket: a hub sink with its own queue and writer, and a reader handling joins."""

    def __init__(self, endpoint: StreamSocketEndpoint, websocket: WebSocket, auth_context: Any) -> None:
        self.endpoint = endpoint
        self.hub = endpoint.hub
        self.limits = endpoint.limits
        self.websocket = websocket
        self.auth_context = auth_context
        # str: a message to send; Future: the sync of a join whose snapshot is still loading (it
        # holds its place so that changes published after the subscription follow the sync)
        self._queue: deque[str | asyncio.Future[str | None]] = deque()
        self._queued_chars = 0  # of the str items in _queue
        self._ready = asyncio.Event()
        self._subs: dict[str | Room, Room] = {}
        self._writer: asyncio.Task[None] | None = None
        self.closed = False
        self.overflowed = False

    # -- the sink side

    def offer(self, text: str | asyncio.Future[str | None]) -> None:
        if self.closed:
            return
        if len(self._queue) >= self.limits.send_queue:
            self._overflow(f"more than {self.limits.send_queue} messages")
            return
        if isinstance(text, str):
            if self._queue and self._queued_chars + len(text) > self.limits.send_queue_bytes:
                self._overflow(f"more than {self.limits.send_queue_bytes} bytes")
                return
            self._queued_chars += len(text)
        self._queue.append(text)
        self._ready.set()

    def _overflow(self, what: str) -> None:
        log.warning("stream socket dropped: %s waiting to be sent", what)
        self.closed = self.overflowed = True
        self._queue.clear()
        self._queued_chars = 0
        self.hub.drop(self)
        if self._writer is not None:
            self._writer.cancel()  # it may be stuck in a send that waits for the peer to read

    async def _write_loop(self) -> None:
        while True:
            if not self._queue:
                self._ready.clear()
                await self._ready.wait()
                continue
            item = self._queue.popleft()
            if isinstance(item, str):
                self._queued_chars -= len(item)
            text = await item if isinstance(item, asyncio.Future) else item
            if text is not None:
                await self.websocket.send_text(text)

    # -- lifecycle

    async def run(self) -> None:
        self._writer = asyncio.create_task(self._write_loop())
        reader = asyncio.create_task(self._read_loop())
        close_code: int | None = None
        self.hub.sockets += 1
        try:
            await asyncio.wait({reader, self._writer}, return_when=asyncio.FIRST_COMPLETED)
            if reader.done() and not reader.cancelled():
                if (exc := reader.exception()) is None:
                    close_code = reader.result()
                elif not isinstance(exc, WebSocketDisconnect):
                    log.error("stream socket reader failed", exc_info=exc)
                    close_code = 1011
        finally:
            self.hub.sockets -= 1
            self.closed = True
            for task in (reader, self._writer):
                task.cancel()
            await asyncio.gather(reader, self._writer, return_exceptions=True)
            self.hub.drop(self)
        if self.overflowed:
            close_code = 1008
        if close_code is not None:
            with suppress(Exception):
                await asyncio.wait_for(
                    self.websocket.close(close_code, _CLOSE_REASONS[close_code]), self.limits.close_timeout)

    async def _read_loop(self) -> int | None:
        """Handle client messages in order; return a close code, or None when the peer went away."""
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return None
            text = message.get("text")
            if text is None:
                try:
                    text = (message.get("bytes") or b"").decode()
                except UnicodeDecodeError:
                    self.offer(_error("INVALID_MESSAGE", "binary message is not UTF-8 JSON"))
                    continue
            if _too_large(text, self.limits.max_message_bytes):
                return 1009
            await self._handle(text)

    # -- client messages

    async def _handle(self, text: str) -> None:
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            self.offer(_error("INVALID_MESSAGE", "message is not JSON"))
            return
        if not isinstance(message, dict) or message.get("type") not in ("join", "leave"):
            self.offer(_error("INVALID_MESSAGE", 'expected {"type": "join" | "leave", "data": {...}}'))
            return
        data = message.get("data")
        if not isinstance(data, dict):
            self.offer(_error("INVALID_MESSAGE", f"{message['type']} needs a data object"))
            return
        stream, group_id, id = data.get("streamName"), data.get("groupId"), data.get("id")
        sub_id = data.get("subscriptionId")
        if not (isinstance(stream, str) and stream and isinstance(group_id, str)
                and (id is None or isinstance(id, str)) and (sub_id is None or isinstance(sub_id, str))):
            self.offer(_error(
                "INVALID_MESSAGE", "data needs string streamName and groupId, and optional string id and "
                "subscriptionId", stream, group_id, id))
            return
        room: Room = (stream, group_id, id)
        if message["type"] == "leave":
            self._leave(sub_id, room)
        else:
            await self._join(sub_id if sub_id is not None else room, room)

    def _leave(self, sub_id: str | None, room: Room) -> None:
        if sub_id is not None and self._subs.get(sub_id) == room:
            keys: list[str | Room] = [sub_id]
        else:  # like Motia, a leave without a known subscription id (of that room) leaves the room altogether
            keys = [key for key, joined in self._subs.items() if joined == room]
        for key in keys:
            self.hub.unsubscribe(self, *self._subs.pop(key))

    async def _join(self, key: str | Room, room: Room) -> None:
        stream, group_id, id = room
        if not self.endpoint.streams.has(stream):
            self.offer(_error("STREAM_NOT_FOUND", f"stream {stream!r} does not exist", *room))
            return
        if self.endpoint.can_access is not None:
            subscription = {"groupId": group_id} if id is None else {"groupId": group_id, "id": id}
            try:
                allowed = await self.endpoint.can_access(stream, subscription, self.auth_context)
            except Exception:
                log.exception("canAccess of stream %r failed; denying the join", stream)
                allowed = False
            if allowed is not True:
                self.offer(_error("STREAM_ACCESS_DENIED", f"access to stream {stream!r} denied", *room))
                return
        if self.closed:
            return
        if key in self._subs:  # the same subscription joined again: replace it
            self.hub.unsubscribe(self, *self._subs.pop(key))
        elif len(self._subs) >= self.limits.max_subscriptions:
            self.offer(_error(
                "TOO_MANY_SUBSCRIPTIONS", f"at most {self.limits.max_subscriptions} subscriptions per socket",
                *room))
            return
        # subscribe before reading the snapshot and reserve the sync's place in the queue, so that no
        # change slips between the two; a change already in the snapshot may arrive once more after it
        self.hub.subscribe(self, *room)
        self._subs[key] = room
        sync: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self.offer(sync)
        # stamped before the read: a change made during the read is then newer than the sync, so
        # clients that drop older changes keep it
        stamp = next_timestamp()
        try:
            if id is None:
                snapshot: Any = await self.endpoint.streams.get_group(stream, group_id)
            else:
                snapshot = await self.endpoint.streams.get(stream, group_id, id)
            text = None if snapshot is None else encode_message(*room, {"type": "sync", "data": snapshot}, stamp)
        except Exception:
            log.exception("reading stream %r for a join failed", stream)
            text = _error("STREAM_ERROR", f"could not read stream {stream!r}", *room)
        if not sync.done():  # done already if the writer was cancelled while waiting for it
            sync.set_result(text)
