"""Redis state: shared by every host of an app (backend = "redis" or state = "redis").

Layout, under the app's prefix (see steppe.redis_conn):
- `s:v:<group>:<key>`: the encoded value, one Redis string per key, with Redis's own expiry for a ttl;
- `s:o:<group>`: a sorted set of the group's keys scored by a global counter (`s:seq`) taken when each
  key was first set, which is the order `get_group` promises;
- `s:groups`: the set of group names that may hold keys (pruned when they turn out empty).

Writes that touch more than one of these are Lua scripts, so they are atomic across hosts. `update`
reads, applies the ops (state/ops.py) and writes inside WATCH/MULTI, retried when another client
changed the key in between: no concurrent update or set of the key is lost. Updates of one key from
one host queue on a local lock first, so only updates racing from other hosts ever retry (without it,
a burst of updates to one hot key would retry each other quadratically).
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from redis.exceptions import WatchError

from ..redis_conn import RedisConn, part
from .base import StateStore, check_group_key, check_name, decode_value, encode_value, expiry
from .ops import apply_ops

# KEYS: value, order, seq, groups. ARGV: blob, ttl ms ("" = none), key, group
_SET = """
local new = redis.call('EXISTS', KEYS[1]) == 0
if ARGV[2] ~= '' then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) else redis.call('SET', KEYS[1], ARGV[1]) end
if new then
  redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[3]), ARGV[3])
  redis.call('SADD', KEYS[4], ARGV[4])
end
return 1
"""
# KEYS: value, order, groups. ARGV: key, group
_DELETE = """
local v = redis.call('GET', KEYS[1])
if v then redis.call('DEL', KEYS[1]) end
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('ZCARD', KEYS[2]) == 0 then redis.call('SREM', KEYS[3], ARGV[2]) end
return v
"""
# KEYS: order. ARGV: value key prefix of the group. Returns the live values in order; prunes the dead.
_GET_GROUP = """
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
local out = {}
for _, m in ipairs(members) do
  local v = redis.call('GET', ARGV[1] .. m)
  if v then out[#out + 1] = v else redis.call('ZREM', KEYS[1], m) end
end
return out
"""
# KEYS: order, groups. ARGV: value key prefix of the group, group
_CLEAR = """
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, m in ipairs(members) do redis.call('DEL', ARGV[1] .. m) end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[2])
return #members
"""
# KEYS: groups. ARGV: app prefix. Names of groups with a live key; forgets the others.
_GROUPS = """
local out = {}
for _, g in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local seg = string.len(g) .. ':' .. g
  local order = ARGV[1] .. 's:o:' .. seg
  local live = false
  for _, m in ipairs(redis.call('ZRANGE', order, 0, -1)) do
    if redis.call('EXISTS', ARGV[1] .. 's:v:' .. seg .. ':' .. m) == 1 then live = true; break end
    redis.call('ZREM', order, m)
  end
  if live then out[#out + 1] = g else redis.call('SREM', KEYS[1], g) end
end
return out
"""


def _ttl_ms(ttl: float | None) -> int | None:
    if ttl is None:
        return None
    expiry(ttl, 0.0)  # the same checks as every store: a positive, finite number
    return max(1, math.ceil(float(ttl) * 1000))


class RedisStateStore(StateStore):
    def __init__(self, conn: RedisConn) -> None:
        self.conn = conn
        self._r = conn.client
        self._groups_key, self._seq_key = conn.key("s", "groups"), conn.key("s", "seq")
        self._set, self._delete = conn.script(_SET), conn.script(_DELETE)
        self._updating: dict[str, asyncio.Lock] = {}  # value key -> lock held by this host's updates of it
        self._get_group, self._clear, self._groups = conn.script(_GET_GROUP), conn.script(_CLEAR), conn.script(_GROUPS)

    def _value_prefix(self, group: str) -> str:
        return self.conn.key("s", "v", part(group)) + ":"

    def _order(self, group: str) -> str:
        return self.conn.key("s", "o", part(group))

    async def get(self, group: str, key: str) -> Any | None:
        check_group_key(group, key)
        blob: bytes | None = await self.conn.command("GET", self._value_prefix(group) + key)
        return None if blob is None else decode_value(blob)

    async def set(self, group: str, key: str, value: Any, ttl: float | None = None) -> Any:
        check_group_key(group, key)
        blob, ms = encode_value(value), _ttl_ms(ttl)
        await self.conn.run(self._set, [self._value_prefix(group) + key, self._order(group), self._seq_key,
                                        self._groups_key], [blob, "" if ms is None else ms, key, group])
        return value

    async def update(self, group: str, key: str, ops: list[dict[str, Any]], ttl: float | None = None) -> Any:
        check_group_key(group, key)
        ms = _ttl_ms(ttl)
        vkey = self._value_prefix(group) + key
        lock = self._updating.setdefault(vkey, asyncio.Lock())
        try:
            async with lock:
                return await self._update(vkey, group, key, ops, ms)
        finally:
            if not lock.locked() and not getattr(lock, "_waiters", None):
                self._updating.pop(vkey, None)

    async def _update(self, vkey: str, group: str, key: str, ops: list[dict[str, Any]], ms: int | None) -> Any:
        async with self._r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(vkey)
                    old: bytes | None = await pipe.get(vkey)  # type: ignore[assignment]
                    value = apply_ops(None if old is None else decode_value(old), ops)
                    blob = encode_value(value)
                    seq = await pipe.incr(self._seq_key) if old is None else None
                    pipe.multi()
                    if ms is not None:
                        pipe.set(vkey, blob, px=ms)
                    else:
                        pipe.set(vkey, blob, keepttl=True)  # a live key keeps its expiry
                    if seq is not None:
                        pipe.zadd(self._order(group), {key: seq})
                        pipe.sadd(self._groups_key, group)
                    await pipe.execute()
                    return value
                except WatchError:
                    continue  # another client changed the key: read it again

    async def delete(self, group: str, key: str) -> Any | None:
        check_group_key(group, key)
        blob = await self.conn.run(self._delete, [self._value_prefix(group) + key, self._order(group),
                                                  self._groups_key], [key, group])
        return None if blob is None else decode_value(blob)

    async def get_group(self, group: str) -> list[Any]:
        check_name("group", group)
        blobs = await self._get_group(keys=[self._order(group)], args=[self._value_prefix(group)])
        return [decode_value(b) for b in blobs]

    async def clear(self, group: str) -> None:
        check_name("group", group)
        await self._clear(keys=[self._order(group), self._groups_key], args=[self._value_prefix(group), group])

    async def groups(self) -> list[str]:
        names = await self._groups(keys=[self._groups_key], args=[self.conn.prefix])
        return sorted(n.decode() for n in names)

    async def entries(self, group: str) -> list[dict[str, Any]]:
        check_name("group", group)
        keys = [k.decode() if isinstance(k, bytes) else str(k) for k in await self._r.zrange(self._order(group), 0, -1)]
        if not keys:
            return []
        async with self._r.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.get(self._value_prefix(group) + key)
                pipe.pttl(self._value_prefix(group) + key)
            answers = await pipe.execute()
        now, out = time.time(), []
        for key, blob, ttl_ms in zip(keys, answers[::2], answers[1::2], strict=True):
            if blob is not None:  # expired since the range was read: gone
                out.append({"key": key, "value": decode_value(blob),
                            "expiresAt": now + ttl_ms / 1000 if ttl_ms and ttl_ms > 0 else None})
        return out

    async def close(self) -> None:
        return None  # the connection pool belongs to the host (steppe.redis_conn)
