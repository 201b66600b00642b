"""Fan-out of stream changes to subscribers, and the `Streams` facade handlers reach as `context.streams`.

A subscriber is a *sink*: anything with a non-blocking `offer(text)` (the WebSocket endpoint's
connections; the Workbench could add its own). Subscriptions are to rooms, `(stream, groupId, None)`
for a whole group or `(stream, groupId, id)` for one item. A change to an item goes to both its rooms,
and a sink in both gets the message once: the Motia clients route a message carrying an `id` to the
item's listeners and the group's listeners themselves, so a second copy would be applied twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal, Protocol

import orjson

from ..state.base import check_name
from .base import StreamStore

Room = tuple[str, str, str | None]
ItemChange = Literal["create", "update", "delete"]


class Sink(Protocol):
    def offer(self, text: str) -> None:
        """Queue one encoded message; must neither block nor raise."""


class UnknownStream(ValueError):
    """A handler or client named a stream the project does not define."""


_last_stamp = 0


def next_timestamp() -> int:
    """Milliseconds, strictly increasing within the host: Motia's clients drop any change not newer than
    the last one they applied, so two changes in one millisecond must not share a stamp."""
    global _last_stamp
    _last_stamp = max(int(time.time() * 1000), _last_stamp + 1)
    return _last_stamp


def seen_timestamp(stamp: int) -> None:
    """A stamp given elsewhere (another host, through a shared store): the next local one is newer."""
    global _last_stamp
    _last_stamp = max(_last_stamp, stamp)


def encode_message(stream: str | None, group_id: str | None, id: str | None, event: dict[str, Any],
                   timestamp: int | None = None) -> str:
    """The server-to-client envelope of the Motia stream wire (keys left out when unknown)."""
    message: dict[str, Any] = {"timestamp": timestamp if timestamp is not None else next_timestamp()}
    if stream is not None:
        message["streamName"] = stream
    if group_id is not None:
        message["groupId"] = group_id
    if id is not None:
        message["id"] = id
    message["event"] = event
    return orjson.dumps(message).decode()


class StreamHub:
    def __init__(self) -> None:
        # room -> sink -> number of that sink's subscriptions to the room (a socket may join a room
        # under several subscription ids and leave them one at a time)
        self._rooms: dict[Room, dict[Sink, int]] = {}
        self._sink_rooms: dict[Sink, set[Room]] = {}
        # the limits of the stream sockets built without their own (a StreamSocketLimits; the host sets
        # it from its settings, the WebSocket endpoint reads it)
        self.socket_limits: Any = None
        self.sockets = 0  # stream WebSockets connected now (the steppe_websocket_clients metric)

    def subscribe(self, sink: Sink, stream: str, group_id: str, id: str | None = None) -> None:
        room = (stream, group_id, id)
        sinks = self._rooms.setdefault(room, {})
        sinks[sink] = sinks.get(sink, 0) + 1
        self._sink_rooms.setdefault(sink, set()).add(room)

    def unsubscribe(self, sink: Sink, stream: str, group_id: str, id: str | None = None) -> None:
        room = (stream, group_id, id)
        sinks = self._rooms.get(room)
        if sinks is None or sink not in sinks:
            return
        sinks[sink] -= 1
        if sinks[sink] == 0:
            del sinks[sink]
            self._forget(sink, room)
            if not sinks:
                del self._rooms[room]

    def drop(self, sink: Sink) -> None:
        """Remove every subscription of the sink (its connection is gone)."""
        for room in self._sink_rooms.pop(sink, set()):
            sinks = self._rooms.get(room)
            if sinks is not None:
                sinks.pop(sink, None)
                if not sinks:
                    del self._rooms[room]

    def _forget(self, sink: Sink, room: Room) -> None:
        rooms = self._sink_rooms.get(sink)
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del self._sink_rooms[sink]

    def subscriber_count(self, stream: str, group_id: str, id: str | None = None) -> int:
        return len(self._rooms.get((stream, group_id, id), ()))

    def publish_item(
        self, stream: str, group_id: str, id: str, type: ItemChange, item: dict[str, Any],
        timestamp: int | None = None,
    ) -> None:
        self._publish(stream, group_id, id, {"type": type, "data": item}, timestamp)

    def publish_event(self, stream: str, group_id: str, id: str | None, event: dict[str, Any],
                      timestamp: int | None = None) -> None:
        """An ephemeral `send`: to the group's room, and to the item's room when `id` is given."""
        self._publish(stream, group_id, id, {"type": "event", "event": event}, timestamp)

    def _publish(self, stream: str, group_id: str, id: str | None, event: dict[str, Any],
                 timestamp: int | None = None) -> None:
        if timestamp is not None:  # stamped by a shared store: later local stamps must stay newer
            seen_timestamp(timestamp)
        recipients = dict(self._rooms.get((stream, group_id, None), {}))
        if id is not None:
            recipients.update(self._rooms.get((stream, group_id, id), {}))
        if not recipients:
            return
        text = encode_message(stream, group_id, id, event, timestamp)  # encoded once for every recipient
        for sink in recipients:  # a copy: an overflowing sink drops itself from the rooms mid-loop
            sink.offer(text)


class Streams:
    """What `context.streams.<name>` calls: the store, plus publishing each change to subscribers."""

    def __init__(self, store: StreamStore, hub: StreamHub, names: set[str] | Callable[[], set[str]]) -> None:
        self.store = store
        self.hub = hub
        # a callable lets the host re-discover stream files (dev reload) without rebuilding the facade
        self._names = names if callable(names) else (lambda: names)

    def has(self, stream: str) -> bool:
        return stream in self._names()

    def _known(self, stream: str) -> None:
        if not self.has(stream):
            raise UnknownStream(f"unknown stream {stream!r}")

    async def get(self, stream: str, group_id: str, id: str) -> dict[str, Any] | None:
        self._known(stream)
        return await self.store.get(stream, group_id, id)

    async def set(self, stream: str, group_id: str, id: str, data: Any) -> dict[str, Any]:
        self._known(stream)
        item, created = await self.store.set(stream, group_id, id, data)
        if not self.store.fans_out:
            self.hub.publish_item(stream, group_id, id, "create" if created else "update", item)
        return item

    async def delete(self, stream: str, group_id: str, id: str) -> dict[str, Any] | None:
        self._known(stream)
        item = await self.store.delete(stream, group_id, id)
        if item is not None and not self.store.fans_out:
            self.hub.publish_item(stream, group_id, id, "delete", item)
        return item

    async def get_group(self, stream: str, group_id: str) -> list[dict[str, Any]]:
        self._known(stream)
        return await self.store.get_group(stream, group_id)

    async def send(self, stream: str, channel: dict[str, Any], event: dict[str, Any]) -> None:
        self._known(stream)
        if not isinstance(channel, dict):
            raise ValueError("channel must be an object {groupId, id?}")
        group_id = check_name("groupId", channel.get("groupId"))
        id = channel.get("id")
        if id is not None:
            check_name("id", id)
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise ValueError("event must be an object {type, data} with a string type")
        message = {"type": event["type"], "data": event.get("data")}
        if self.store.fans_out:
            await self.store.send(stream, group_id, id, message)
        else:
            self.hub.publish_event(stream, group_id, id, message)
