"""In-memory state: the backend for tests and throwaway runs (nothing survives the process)."""

from __future__ import annotations

import time
from typing import Any

from .base import (
    SWEEP_INTERVAL,
    StateStore,
    check_group_key,
    check_name,
    decode_value,
    encode_value,
    expiry,
)
from .ops import apply_ops

# group -> key -> (encoded value, expiry or None); dicts keep first-insertion order, which is the
# order get_group promises.
_Entry = tuple[bytes, float | None]


def _live(entry: _Entry, now: float) -> bool:
    return entry[1] is None or entry[1] > now


class MemoryStateStore(StateStore):
    def __init__(self) -> None:
        self._groups: dict[str, dict[str, _Entry]] = {}
        self._next_sweep = time.time() + SWEEP_INTERVAL

    def _now(self) -> float:
        now = time.time()
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_INTERVAL
            for group in list(self._groups):
                entries = self._groups[group]
                for key in [k for k, e in entries.items() if not _live(e, now)]:
                    del entries[key]
                if not entries:
                    del self._groups[group]
        return now

    def _pop(self, group: str, key: str) -> _Entry | None:
        entries = self._groups.get(group)
        if entries is None or key not in entries:
            return None
        entry = entries.pop(key)
        if not entries:
            del self._groups[group]
        return entry

    async def get(self, group: str, key: str) -> Any | None:
        check_group_key(group, key)
        now = self._now()
        entry = self._groups.get(group, {}).get(key)
        if entry is None:
            return None
        if not _live(entry, now):
            self._pop(group, key)
            return None
        return decode_value(entry[0])

    async def set(self, group: str, key: str, value: Any, ttl: float | None = None) -> Any:
        check_group_key(group, key)
        now = self._now()
        entry = (encode_value(value), expiry(ttl, now))
        entries = self._groups.setdefault(group, {})
        old = entries.get(key)
        if old is not None and not _live(old, now):
            del entries[key]  # an expired key set again counts as new: it moves to the end
        entries[key] = entry
        return value

    async def update(self, group: str, key: str, ops: list[dict[str, Any]], ttl: float | None = None) -> Any:
        check_group_key(group, key)
        now = self._now()
        entries = self._groups.get(group, {})
        old = entries.get(key)
        live = old is not None and _live(old, now)
        value = apply_ops(decode_value(old[0]) if live and old else None, ops)
        expires = expiry(ttl, now) if ttl is not None else (old[1] if live and old else None)
        if old is not None and not live:
            del entries[key]
        self._groups.setdefault(group, {})[key] = (encode_value(value), expires)
        return value

    async def delete(self, group: str, key: str) -> Any | None:
        check_group_key(group, key)
        now = self._now()
        entry = self._pop(group, key)
        if entry is None or not _live(entry, now):
            return None
        return decode_value(entry[0])

    async def get_group(self, group: str) -> list[Any]:
        check_name("group", group)
        now = self._now()
        return [decode_value(e[0]) for e in self._groups.get(group, {}).values() if _live(e, now)]

    async def clear(self, group: str) -> None:
        check_name("group", group)
        self._groups.pop(group, None)

    async def groups(self) -> list[str]:
        now = self._now()
        return sorted(g for g, entries in self._groups.items()
                      if any(_live(e, now) for e in entries.values()))

    async def entries(self, group: str) -> list[dict[str, Any]]:
        check_name("group", group)
        now = self._now()
        return [{"key": k, "value": decode_value(e[0]), "expiresAt": e[1]}
                for k, e in self._groups.get(group, {}).items() if _live(e, now)]

    async def close(self) -> None:
        self._groups.clear()
