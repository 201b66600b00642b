"""Subscriptions of the stream client: what one join of an item or a group holds, the changes applied
to it, and the ways to wait for them; the errors and changes a subscriber sees."""

from __future__ import annotations

import asyncio
import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

if TYPE_CHECKING:
    from .client import StreamClient

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
        # on a new connection its sync replaces the state whatever its timestamp: a host restarted (or another
        # host behind a balancer) may stamp lower than the last connection did (stamps run ahead of the clock
        # under bursts of more than one change a millisecond); ordering holds within one connection only
        self.synced = False
        self._last_sync = 0
        self._last_change.clear()

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
                return  # older than the sync already applied on this connection
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


def _remove(listeners: list[Callback], callback: Callback) -> None:
    if callback in listeners:
        listeners.remove(callback)


def _put_dropping_oldest(queue: asyncio.Queue[Any], value: Any) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(value)
