"""Redis streams (the Steppe kind: items browsers watch), shared by every host of an app.

Layout, under the app's prefix: `t:i:<stream>:<group>` a hash of id -> encoded item, `t:o:<stream>:<group>`
a sorted set of the ids by creation (a global counter, `t:seq`), which is the group's order.

Fan-out: each write is one Lua script that changes the item *and* PUBLISHes the change on the app's
channel (`t:changes`), so the order in which every host hears about the changes of an item is the order
in which they were made, whichever host made them. Each host subscribes once and hands what it hears to
its own hub (and so to its WebSocket clients), its own writes included. The change carries a stamp
(milliseconds, strictly increasing across the app: `t:stamp`) that the clients use to drop stale changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import orjson

from ..redis_conn import RedisConn, part
from ..state.base import check_name, decode_value
from ..tasks import raise_if_cancelling
from .base import StreamStore, check_address, make_item
from .hub import StreamHub, next_timestamp

if TYPE_CHECKING:
    from ..health import Health

log = logging.getLogger("steppe.streams.redis")

_STAMP = """
local function stamp(key, floor)
  local t = redis.call('TIME')
  local now = math.max(tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), tonumber(floor))
  local last = tonumber(redis.call('GET', key) or '0')
  if now <= last then now = last + 1 end
  redis.call('SET', key, string.format('%d', now))
  return string.format('%d', now)
end
"""
# KEYS: items, order, seq, stamp, channel. ARGV: id, item, message head, local stamp floor
_SET = _STAMP + """
local created = redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) == 1
if created then redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[3]), ARGV[1]) end
local kind = created and 'create' or 'update'
local t = stamp(KEYS[4], ARGV[4])
redis.call('PUBLISH', KEYS[5], ARGV[3] .. ',"t":' .. t .. ',"k":"' .. kind .. '","d":' .. ARGV[2] .. '}')
return created and 1 or 0
"""
# KEYS: items, order, stamp, channel. ARGV: id, message head, local stamp floor
_DELETE = _STAMP + """
local item = redis.call('HGET', KEYS[1], ARGV[1])
if not item then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('PUBLISH', KEYS[4], ARGV[2] .. ',"t":' .. stamp(KEYS[3], ARGV[3]) .. ',"k":"delete","d":' .. item .. '}')
return item
"""
# KEYS: stamp, channel. ARGV: message head, event, local stamp floor
_SEND = _STAMP + """
redis.call('PUBLISH', KEYS[2], ARGV[1] .. ',"t":' .. stamp(KEYS[1], ARGV[3]) .. ',"k":"event","d":' .. ARGV[2] .. '}')
return 1
"""
# KEYS: items, order
_GET_GROUP = """
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local item = redis.call('HGET', KEYS[1], id)
  if item then out[#out + 1] = item end
end
return out
"""


def _head(stream: str, group_id: str, id: str | None) -> bytes:
    """The start of a change message, without its closing brace (the Lua side adds stamp, kind, data)."""
    return orjson.dumps({"s": stream, "g": group_id, "i": id})[:-1]


class RedisStreamStore(StreamStore):
    fans_out = True

    def __init__(self, conn: RedisConn) -> None:
        self.conn = conn
        self.health: Health | None = None
        self._r = conn.client
        self._seq, self._stamp, self.channel = conn.key("t", "seq"), conn.key("t", "stamp"), conn.key("t", "changes")
        self._set, self._delete = conn.script(_SET), conn.script(_DELETE)
        self._send, self._get_group = conn.script(_SEND), conn.script(_GET_GROUP)
        self._listener: asyncio.Task[None] | None = None

    def _keys(self, stream: str, group_id: str) -> tuple[str, str]:
        where = f"{part(stream)}:{part(group_id)}"
        return self.conn.key("t", "i", where), self.conn.key("t", "o", where)

    async def get(self, stream: str, group_id: str, id: str) -> dict[str, Any] | None:
        check_address(stream, group_id, id)
        blob: bytes | None = await self._r.hget(self._keys(stream, group_id)[0], id)  # type: ignore[assignment]
        return None if blob is None else decode_value(blob)

    async def set(self, stream: str, group_id: str, id: str, data: Any) -> tuple[dict[str, Any], bool]:
        item, blob = make_item(stream, group_id, id, data)
        items, order = self._keys(stream, group_id)
        created = await self.conn.batched(self._set, [items, order, self._seq, self._stamp, self.channel],
                                          [id, blob, _head(stream, group_id, id), next_timestamp()])
        return item, bool(created)

    async def delete(self, stream: str, group_id: str, id: str) -> dict[str, Any] | None:
        check_address(stream, group_id, id)
        items, order = self._keys(stream, group_id)
        blob = await self.conn.batched(self._delete, [items, order, self._stamp, self.channel],
                                       [id, _head(stream, group_id, id), next_timestamp()])
        return None if blob is None else decode_value(blob)

    async def get_group(self, stream: str, group_id: str) -> list[dict[str, Any]]:
        check_address(stream, group_id)
        blobs = await self._get_group(keys=list(self._keys(stream, group_id)))
        return [decode_value(b) for b in blobs if b is not None]

    async def groups(self, stream: str) -> list[dict[str, Any]]:
        """SCAN over the stream's item hashes (an admin view: not on any hot path)."""
        check_name("stream", stream)
        head = self._keys(stream, "")[0][: -len(part(""))]  # `<prefix>t:i:<part(stream)>:`
        pattern = "".join(f"[{c}]" if c in "*?[]\\" else c for c in head) + "*"
        found: list[dict[str, Any]] = []
        async for raw in self._r.scan_iter(match=pattern, count=500):
            name = raw.decode()[len(head):]
            size, _, group_id = name.partition(":")
            if size.isdigit() and (count := int(await self._r.hlen(raw))):
                found.append({"groupId": group_id, "count": count})
        return sorted(found, key=lambda g: g["groupId"])

    async def send(self, stream: str, group_id: str, id: str | None, event: dict[str, Any]) -> None:
        await self.conn.batched(self._send, [self._stamp, self.channel],
                                [_head(stream, group_id, id), orjson.dumps(event), next_timestamp()])

    # --- fan-out to this host's subscribers
    async def start(self, hub: StreamHub, health: Health | None = None) -> None:
        self.health = health
        subscribed = asyncio.get_running_loop().create_future()
        self._listener = asyncio.get_running_loop().create_task(self._listen(hub, subscribed))
        await asyncio.wait_for(asyncio.shield(subscribed), 10)

    async def _listen(self, hub: StreamHub, subscribed: asyncio.Future[None]) -> None:
        while True:
            raise_if_cancelling()
            pubsub = self._r.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                if not subscribed.done():
                    subscribed.set_result(None)
                if self.health:
                    self.health.report("streams.redis", "ok", "")
                async for message in pubsub.listen():
                    raise_if_cancelling()  # else the next read waits for a message that may never come
                    if message.get("type") == "message":
                        self._deliver(hub, message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as e:
                raise_if_cancelling()
                log.warning("stream fan-out from Redis interrupted (%s); reconnecting", e)
                if self.health:
                    self.health.report("streams.redis", "degraded", "stream changes from other hosts are not "
                                       "reaching this host's clients: Redis is not answering")
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    @staticmethod
    def _deliver(hub: StreamHub, data: bytes) -> None:
        try:
            m = orjson.loads(data)
            stamp = int(m["t"])
            if m["k"] == "event":
                hub.publish_event(m["s"], m["g"], m["i"], m["d"], stamp)
            else:
                hub.publish_item(m["s"], m["g"], m["i"], m["k"], m["d"], stamp)
        except Exception:  # one bad message must not stop the fan-out
            log.exception("could not hand a stream change from Redis to this host's clients")

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
