"""A Python (asyncio) client of Steppe's stream WebSocket, for services and tests.

```python
from steppe.stream_client import StreamClient

async with StreamClient("ws://127.0.0.1:3000/", auth_token="secret") as client:
    todos = await client.subscribe_group("todos", "inbox")
    todos.on_change(lambda items: print(len(items), "todos"))
    await todos.wait_synced()
    change = await todos.next_change(timeout=5)  # StreamChange(type="create", item={...}, value=[...])
```

It speaks Motia's stream wire (see docs/streams.md): `join`/`leave` out; `sync`, `create`, `update`,
`delete` and `event` envelopes in. The connection comes back by itself: after a drop it reconnects with
a doubling backoff (0.25 s up to 5 s) and re-joins every live subscription, whose next `sync` replaces
what it held. Item changes older (by the server's timestamp) than the last change applied to the same
item are dropped as stale.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

log = logging.getLogger("steppe.stream_client")

Item = dict[str, Any]
V = TypeVar("V")
ChangeType = Literal["sync", "create", "update", "delete"]
Callback = Callable[..., Any]


class StreamError(Exception):
    """An error the server reported for a subscription (`code` e.g. STREAM_ACCESS_DENIED, STREAM_NOT_FOUND)."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message


class StreamAuthError(StreamError):
    """The server refused the socket (HTTP 401 from the project's authenticate hook)."""


@dataclass(frozen=True)
class StreamChange(Generic[V]):
    """One change applied to a subscription: `item` is what the server sent (the item, or the group's
    list for a group sync), `value` the subscription's value after it."""

    type: ChangeType
    item: Any
    value: V
    timestamp: int


@dataclass(frozen=True)
class StreamEvent:
    """A custom event from `streams.<name>.send(channel, {type, data})`."""

    type: str
    data: Any
    timestamp: int
    id: str | None = None


@dataclass
class _Waiters:
    futures: list[asyncio.Future[Any]] = field(default_factory=list)

    def add(self) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future

    def resolve(self, value: Any = None, error: BaseException | None = None) -> None:
        futures, self.futures = self.futures, []
        for future in futures:
            if future.done():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)


class Subscription(ABC, Generic[V]):
    """A live subscription to an item or a group; use `ItemSubscription` / `GroupSubscription`."""

    def __init__(self, client: StreamClient, stream: str, group_id: str, id: str | None, buffer: int) -> None:
        self.client = client
        self.stream_name = stream
        self.group_id = group_id
        self.id = id
        self.subscription_id = uuid.uuid4().hex
        self.errors: list[StreamError] = []
        self.closed = False
        self.synced = False  # a sync arrived since the last (re)join
        self._change_listeners: list[Callback] = []
        self._event_listeners: dict[str, list[Callback]] = {}
        self._error_listeners: list[Callback] = []
        self._changes: asyncio.Queue[StreamChange[V] | StreamError] = asyncio.Queue(buffer)
        self._events: asyncio.Queue[StreamEvent] = asyncio.Queue(buffer)
        self._sync_waiters = _Waiters()
        self._joined_on = -1  # the connection number this subscription was last joined on
        self._last_sync = 0  # timestamp of the last sync applied
        self._last_change: dict[str, int] = {}  # item id -> timestamp of the last change applied to it

    @property
    def room(self) -> tuple[str, str, str | None]:
        return (self.stream_name, self.group_id, self.id)

    @property
    @abstractmethod
    def value(self) -> V:
        """The current item (or None) / the current list of items."""

    # -- listeners

    def on_change(self, callback: Callable[[V], Any]) -> Callable[[], None]:
        """Call `callback(value)` after every sync/create/update/delete; returns a function removing it."""
        self._change_listeners.append(callback)
        return lambda: _remove(self._change_listeners, callback)

    def on_event(self, type: str, callback: Callable[[Any], Any]) -> Callable[[], None]:
        """Call `callback(data)` for each custom event of this type; returns a function removing it."""
        self._event_listeners.setdefault(type, []).append(callback)
        return lambda: _remove(self._event_listeners.get(type, []), callback)

    def on_error(self, callback: Callable[[StreamError], Any]) -> Callable[[], None]:
        """Call `callback(StreamError)` when the server refuses or fails this subscription."""
        self._error_listeners.append(callback)
        return lambda: _remove(self._error_listeners, callback)

    # -- awaiting

    async def next_change(self, timeout: float | None = 10.0) -> StreamChange[V]:
        """The oldest change not yet taken (the last `buffer` are kept); raises the subscription's
        StreamError if one arrived first, TimeoutError after `timeout` seconds."""
        change = await asyncio.wait_for(self._changes.get(), timeout)
        if isinstance(change, StreamError):
            raise change
        return change

    async def next_event(self, timeout: float | None = 10.0) -> StreamEvent:
        """The oldest custom event not yet taken (the last `buffer` are kept)."""
        return await asyncio.wait_for(self._events.get(), timeout)

    async def wait_synced(self, timeout: float | None = 10.0) -> V:
        """Wait for the sync of the current join and return the value; raises its StreamError if the
        join was refused. (A join of a missing item gets no sync: this then times out.)"""
        if self.errors and not self.synced:
            raise self.errors[-1]
        if self.synced:
            return self.value
        return await asyncio.wait_for(asyncio.shield(self._sync_waiters.add()), timeout)

    def drain(self) -> list[StreamChange[V]]:
        """Take every buffered change without waiting (errors are left out)."""
        changes: list[StreamChange[V]] = []
        while not self._changes.empty():
            change = self._changes.get_nowait()
            if not isinstance(change, StreamError):
                changes.append(change)
        return changes

    async def close(self) -> None:
        """Leave the room; no more changes or events reach this subscription."""
        if self.closed:
            return
        self.closed = True
        await self.client._unsubscribe(self)

    # -- wire

    def _join_message(self) -> str:
        data: dict[str, Any] = {"streamName": self.stream_name, "groupId": self.group_id,
                                "subscriptionId": self.subscription_id}
        if self.id is not None:
            data["id"] = self.id
        return json.dumps({"type": "join", "data": data})

    def _leave_message(self) -> str:
        data = json.loads(self._join_message())["data"]
        return json.dumps({"type": "leave", "data": data})

    def _rejoined(self) -> None:
        self.synced = False

    def _receive(self, message: dict[str, Any]) -> None:
        event = message["event"]
        kind = event.get("type")
        timestamp = message.get("timestamp")
        timestamp = timestamp if isinstance(timestamp, int) else 0
        if kind == "event":
            inner = event.get("event")
            if not isinstance(inner, dict):
                return
            self._emit_event(StreamEvent(str(inner.get("type")), inner.get("data"), timestamp, message.get("id")))
            return
        if kind == "sync":
            if timestamp < self._last_sync:
                return  # an older connection's sync
            # a sync is not a staleness barrier for the changes that follow it: a change published
            # while the snapshot was read may carry an earlier timestamp and still be missing from it
            self._last_sync = timestamp
            self._last_change.clear()
            self._apply_sync(event.get("data"))
            self.synced = True
            self._changed(StreamChange("sync", event.get("data"), self.value, timestamp))
            self._sync_waiters.resolve(self.value)
            return
        if kind not in ("create", "update", "delete"):
            return
        item = event.get("data")
        if not isinstance(item, dict):
            return
        item_id = item.get("id", message.get("id"))
        key = str(item_id)
        if timestamp < self._last_change.get(key, 0):
            return  # stale: older than the last change applied to this item
        self._last_change[key] = timestamp
        self._apply_change(kind, key, item)
        self._changed(StreamChange(kind, item, self.value, timestamp))

    @abstractmethod
    def _apply_sync(self, data: Any) -> None: ...

    @abstractmethod
    def _apply_change(self, kind: str, item_id: str, item: Item) -> None: ...

    def _changed(self, change: StreamChange[V]) -> None:
        _put_dropping_oldest(self._changes, change)
        for callback in list(self._change_listeners):
            self.client._call(callback, change.value)

    def _emit_event(self, event: StreamEvent) -> None:
        _put_dropping_oldest(self._events, event)
        for callback in list(self._event_listeners.get(event.type, [])):
            self.client._call(callback, event.data)

    def _error(self, error: StreamError) -> None:
        self.errors.append(error)
        _put_dropping_oldest(self._changes, error)
        self._sync_waiters.resolve(error=error)
        for callback in list(self._error_listeners):
            self.client._call(callback, error)

    def __repr__(self) -> str:
        where = f"{self.stream_name}/{self.group_id}" + (f"/{self.id}" if self.id is not None else "")
        return f"<{type(self).__name__} {where}>"


class ItemSubscription(Subscription[Item | None]):
    """`value` is the item, or None before its sync, for a missing item, and after a delete."""

    def __init__(self, client: StreamClient, stream: str, group_id: str, id: str, buffer: int) -> None:
        super().__init__(client, stream, group_id, id, buffer)
        self._value: Item | None = None

    @property
    def value(self) -> Item | None:
        return self._value

    def _apply_sync(self, data: Any) -> None:
        self._value = data if isinstance(data, dict) else None

    def _apply_change(self, kind: str, item_id: str, item: Item) -> None:
        self._value = None if kind == "delete" else item


class GroupSubscription(Subscription[list[Item]]):
    """`value` is the group's items, in the order they first appeared, one per id (a new list each change)."""

    def __init__(self, client: StreamClient, stream: str, group_id: str, buffer: int) -> None:
        super().__init__(client, stream, group_id, None, buffer)
        self._items: dict[str, Item] = {}
        self._value: list[Item] = []

    @property
    def value(self) -> list[Item]:
        return self._value

    def _apply_sync(self, data: Any) -> None:
        items = data if isinstance(data, list) else []
        self._items = {str(item.get("id")): item for item in items if isinstance(item, dict)}
        self._value = list(self._items.values())

    def _apply_change(self, kind: str, item_id: str, item: Item) -> None:
        if kind == "delete":
            self._items.pop(item_id, None)
        else:
            self._items[item_id] = item  # an existing id keeps its place
        self._value = list(self._items.values())


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


def _remove(listeners: list[Callback], callback: Callback) -> None:
    if callback in listeners:
        listeners.remove(callback)


def _put_dropping_oldest(queue: asyncio.Queue[Any], value: Any) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(value)


async def _logged(awaitable: Awaitable[Any], callback: Callback) -> None:
    try:
        await awaitable
    except Exception:
        log.exception("stream listener %r failed", callback)


__all__ = [
    "GroupSubscription",
    "ItemSubscription",
    "StreamAuthError",
    "StreamChange",
    "StreamClient",
    "StreamError",
    "StreamEvent",
    "Subscription",
]
