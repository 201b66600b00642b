"""SQLite streams: one file (e.g. `.steppe/streams.db`) that survives restarts.

Same arrangement as the SQLite state store (see steppe.state.sqlite): synchronous `_..._sync` methods
run on the loop through `_call`, which is the one place to change to move the work to a thread.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ..db import DbFile, open_db, transaction
from ..state.base import check_name, decode_value
from .base import StreamStore, check_address, make_item

T = TypeVar("T")

# rowid order is creation order: replacing an item updates its row in place.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    stream TEXT NOT NULL,
    grp TEXT NOT NULL,
    id TEXT NOT NULL,
    item BLOB NOT NULL,
    PRIMARY KEY (stream, grp, id)
);
"""


class SqliteStreamStore(StreamStore):
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._db = open_db(self.path, _SCHEMA)
        self.file = DbFile(self._db, self.path, "streams")  # storage faults become StorageError

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        with self.file.guard():
            return fn(*args)

    def _get_sync(self, stream: str, group_id: str, id: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT item FROM items WHERE stream = ? AND grp = ? AND id = ?", (stream, group_id, id),
        ).fetchone()
        return None if row is None else decode_value(row[0])

    def _set_sync(self, stream: str, group_id: str, id: str, blob: bytes) -> bool:
        with transaction(self._db):
            created = self._db.execute(
                "INSERT OR IGNORE INTO items (stream, grp, id, item) VALUES (?, ?, ?, ?)",
                (stream, group_id, id, blob)).rowcount == 1
            if not created:
                self._db.execute(
                    "UPDATE items SET item = ? WHERE stream = ? AND grp = ? AND id = ?",
                    (blob, stream, group_id, id))
        return created

    def _delete_sync(self, stream: str, group_id: str, id: str) -> dict[str, Any] | None:
        # fetchall, not fetchone: a RETURNING statement left unfinished keeps its transaction open
        rows = self._db.execute(
            "DELETE FROM items WHERE stream = ? AND grp = ? AND id = ? RETURNING item",
            (stream, group_id, id)).fetchall()
        return decode_value(rows[0][0]) if rows else None

    def _get_group_sync(self, stream: str, group_id: str) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT item FROM items WHERE stream = ? AND grp = ? ORDER BY rowid", (stream, group_id))
        return [decode_value(blob) for (blob,) in rows]

    async def get(self, stream: str, group_id: str, id: str) -> dict[str, Any] | None:
        check_address(stream, group_id, id)
        return self._call(self._get_sync, stream, group_id, id)

    async def set(self, stream: str, group_id: str, id: str, data: Any) -> tuple[dict[str, Any], bool]:
        item, blob = make_item(stream, group_id, id, data)
        return item, self._call(self._set_sync, stream, group_id, id, blob)

    async def delete(self, stream: str, group_id: str, id: str) -> dict[str, Any] | None:
        check_address(stream, group_id, id)
        return self._call(self._delete_sync, stream, group_id, id)

    async def get_group(self, stream: str, group_id: str) -> list[dict[str, Any]]:
        check_address(stream, group_id)
        return self._call(self._get_group_sync, stream, group_id)

    def _groups_sync(self, stream: str) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT grp, count(*) FROM items WHERE stream = ? GROUP BY grp ORDER BY grp", (stream,))
        return [{"groupId": g, "count": n} for g, n in rows]

    async def groups(self, stream: str) -> list[dict[str, Any]]:
        check_name("stream", stream)
        return self._call(self._groups_sync, stream)

    async def close(self) -> None:
        self._db.close()
