"""In-memory streams: the backend for tests and throwaway runs (nothing survives the process)."""

from __future__ import annotations

from typing import Any

from ..state.base import check_name, decode_value
from .base import StreamStore, check_address, make_item

# Items are kept encoded, like the SQLite backend: callers get fresh copies and cannot alias the store.


class MemoryStreamStore(StreamStore):
    def __init__(self) -> None:
        self._groups: dict[tuple[str, str], dict[str, bytes]] = {}

    async def get(self, stream: str, group_id: str, id: str) -> dict[str, Any] | None:
        check_address(stream, group_id, id)
        blob = self._groups.get((stream, group_id), {}).get(id)
        return None if blob is None else decode_value(blob)

    async def set(self, stream: str, group_id: str, id: str, data: Any) -> tuple[dict[str, Any], bool]:
        item, blob = make_item(stream, group_id, id, data)
        items = self._groups.setdefault((stream, group_id), {})
        created = id not in items
        items[id] = blob
        return item, created

    async def delete(self, stream: str, group_id: str, id: str) -> dict[str, Any] | None:
        check_address(stream, group_id, id)
        items = self._groups.get((stream, group_id))
        if items is None or id not in items:
            return None
        blob = items.pop(id)
        if not items:
            del self._groups[(stream, group_id)]
        return decode_value(blob)

    async def get_group(self, stream: str, group_id: str) -> list[dict[str, Any]]:
        check_address(stream, group_id)
        return [decode_value(blob) for blob in self._groups.get((stream, group_id), {}).values()]

    async def groups(self, stream: str) -> list[dict[str, Any]]:
        check_name("stream", stream)
        return [{"groupId": g, "count": len(items)} for (s, g), items in sorted(self._groups.items()) if s == stream]

    async def close(self) -> None:
        self._groups.clear()
