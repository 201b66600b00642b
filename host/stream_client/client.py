"""The stream client's connection: one WebSocket to a Steppe host carrying any number of subscriptions,
reconnected with a doubling backoff, every live subscription joined again."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Awaitable
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from .subscription import (
    Callback,
    GroupSubscription,
    ItemSubscription,
    StreamAuthError,
    StreamError,
    Subscription,
)

log = logging.getLogger("steppe.stream_client")


class StreamClient:
    """One WebSocket to a Steppe host carrying any number of subscriptions; reconnects by itself.

    `auth_token` is sent as `Sec-WebSocket-Protocol: Authorization,<token>` (or as `?authToken=` with
    `token_in_query=True`, for tokens that are not valid protocol names). Entering the context waits up to
    `connect_timeout` seconds for the first connection (None: do not wait); a refused token raises
    StreamAuthError there. `connected` is set while the socket is open.
    """

    def __init__(
        self,
        url: str,
        auth_token: str | None = None,
        *,
        token_in_query: bool = False,
        connect_timeout: float | None = 10.0,
        min_backoff: float = 0.25,
        max_backoff: float = 5.0,
        buffer: int = 1000,
        max_message_bytes: int | None = 64 * 1024 * 1024,
    ) -> None:
        scheme = urlsplit(url).scheme
        if scheme in ("http", "https"):
            url = url.replace(scheme, "ws" if scheme == "http" else "wss", 1)
        if auth_token is not None and token_in_query:
            parts = urlsplit(url)
            query = f"{parts.query}&" if parts.query else ""
            url = urlunsplit(parts._replace(query=query + urlencode({"authToken": auth_token})))
        self.url = url
        self.auth_token = auth_token
        self.token_in_query = token_in_query
        self.connect_timeout = connect_timeout
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.buffer = buffer
        self.max_message_bytes = max_message_bytes
        self.connected = asyncio.Event()
        self.connections = 0  # sockets opened so far (more than 1: it reconnected)
        self.errors: list[StreamError] = []  # errors not addressed to a subscription
        self.last_error: BaseException | None = None  # why the last connection attempt or socket failed
        self._subs: dict[tuple[str, str, str | None], list[Subscription[Any]]] = {}
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._first: asyncio.Future[None] | None = None
        self._closing = False
        self._callbacks: set[asyncio.Task[Any]] = set()

    async def __aenter__(self) -> StreamClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Start connecting (what `async with` does); waits for the first connection as configured."""
        if self._task is not None:
            return
        self._first = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(), name=f"stream-client {self.url}")
        if self.connect_timeout is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._first), self.connect_timeout)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Close the socket and stop reconnecting."""
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._ws is not None:
            await self._ws.close()
            self._ws = None
        self.connected.clear()
        for task in list(self._callbacks):
            task.cancel()

    async def subscribe_item(self, stream: str, group_id: str, id: str) -> ItemSubscription:
        sub = ItemSubscription(self, stream, group_id, id, self.buffer)
        await self._subscribe(sub)
        return sub

    async def subscribe_group(self, stream: str, group_id: str) -> GroupSubscription:
        sub = GroupSubscription(self, stream, group_id, self.buffer)
        await self._subscribe(sub)
        return sub

    # -- internals

    async def _subscribe(self, sub: Subscription[Any]) -> None:
        self._subs.setdefault(sub.room, []).append(sub)
        if self._ws is not None:
            await self._join(self._ws, sub)

    async def _join(self, ws: ClientConnection, sub: Subscription[Any]) -> None:
        if sub.closed or sub._joined_on == self.connections:
            return
        sub._joined_on = self.connections
        sub._rejoined()
        try:
            await ws.send(sub._join_message())
        except ConnectionClosed:
            pass  # joined again after the reconnect

    async def _unsubscribe(self, sub: Subscription[Any]) -> None:
        subs = self._subs.get(sub.room, [])
        if sub in subs:
            subs.remove(sub)
            if not subs:
                del self._subs[sub.room]
        if self._ws is not None and sub._joined_on == self.connections:
            try:
                await self._ws.send(sub._leave_message())
            except ConnectionClosed:
                pass

    def _call(self, callback: Callback, *args: Any) -> None:
        try:
            result = callback(*args)
        except Exception:
            log.exception("stream listener %r failed", callback)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(_logged(result, callback))
            self._callbacks.add(task)
            task.add_done_callback(self._callbacks.discard)

    async def _connect(self) -> ClientConnection:
        protocols: list[Subprotocol] | None = None
        if self.auth_token is not None and not self.token_in_query:
            protocols = [Subprotocol("Authorization"), Subprotocol(self.auth_token)]
        return await connect(self.url, subprotocols=protocols, max_size=self.max_message_bytes,
                             open_timeout=10, close_timeout=2)

    async def _run(self) -> None:
        backoff = self.min_backoff
        while not self._closing:
            try:
                ws = await self._connect()
            except InvalidStatus as exc:
                status = exc.response.status_code
                error: BaseException = (
                    StreamAuthError("UNAUTHORIZED", f"the server refused the socket with {status}")
                    if status in (401, 403) else exc)
                self._failed_attempt(error, fatal_first=status in (401, 403))
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                self._failed_attempt(exc)
            except Exception as exc:  # e.g. an invalid URL: no point in trying again
                self._failed_attempt(exc, fatal_first=True)
            else:
                backoff = self.min_backoff
                await self._serve(ws)
            if self._closing:
                return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff)

    def _failed_attempt(self, error: BaseException, fatal_first: bool = False) -> None:
        self.last_error = error
        log.debug("stream socket to %s failed: %s", self.url, error)
        if fatal_first and self._first is not None and not self._first.done() and self.connections == 0:
            self._first.set_exception(error)
            self._first.exception()  # retrieved: no "never retrieved" warning when nobody waits

    async def _serve(self, ws: ClientConnection) -> None:
        self.connections += 1
        self._ws = ws
        try:
            for subs in list(self._subs.values()):
                for sub in list(subs):
                    await self._join(ws, sub)
            self.connected.set()
            if self._first is not None and not self._first.done():
                self._first.set_result(None)
            async for text in ws:
                try:
                    self._dispatch(text if isinstance(text, str) else text.decode())
                except Exception:
                    log.exception("stream message could not be handled: %.200s", text)
        except ConnectionClosed as exc:
            self.last_error = exc
        finally:
            self.connected.clear()
            if self._ws is ws:
                self._ws = None
            if not self._closing:
                log.info("stream socket to %s closed; reconnecting", self.url)

    def _dispatch(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            log.warning("stream socket sent a message that is not JSON")
            return
        if not isinstance(message, dict) or not isinstance(message.get("event"), dict):
            return
        event = message["event"]
        stream, group_id, id = message.get("streamName"), message.get("groupId"), message.get("id")
        if not isinstance(stream, str) or not isinstance(group_id, str):
            stream = group_id = ""  # an error about no room in particular
        room: tuple[str, str, str | None] = (stream, group_id, id if isinstance(id, str) else None)
        inner = event.get("event")
        if event.get("type") == "event" and isinstance(inner, dict) and inner.get("type") == "error" \
                and isinstance(inner.get("data"), dict) and isinstance(inner["data"].get("code"), str):
            error = StreamError(inner["data"]["code"], str(inner["data"].get("message") or ""))
            targets = self._subs.get(room, [])
            for sub in list(targets):
                sub._error(error)
            if not targets:
                self.errors.append(error)
            return
        targets = list(self._subs.get(room, []))
        if room[2] is not None and event.get("type") != "sync":
            targets += self._subs.get((room[0], room[1], None), [])
        for sub in targets:
            if not sub.closed:
                sub._receive(message)


async def _logged(awaitable: Awaitable[Any], callback: Callback) -> None:
    try:
        await awaitable
    except Exception:
        log.exception("stream listener %r failed", callback)
