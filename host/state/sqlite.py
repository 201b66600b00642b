"""SQLite state: the embedded default, one file (e.g. `.steppe/state.db`) that survives restarts.

Calls run directly on the event loop: a local SQLite statement costs tens of microseconds, less than a
hop to a worker thread. Every async method delegates to one synchronous `_..._sync` method through
`_call`, so moving the work to a thread means changing `_call` alone (plus a lock around the
connection, which is opened with check_same_thread=False for that reason). Because nothing awaits
inside a `_..._sync` method, each store call is atomic with respect to the other tasks of the loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ..db import DbFile, open_db, transaction
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

T = TypeVar("T")

# rowid order is first-insertion order: an upsert keeps the row (and so its rowid), and a new row
# always gets a rowid above every live one.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS state (
    grp TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    expires_at REAL,
    PRIMARY KEY (grp, key)
);
CREATE INDEX IF NOT EXISTS state_expiry ON state (expires_at) WHERE expires_at IS NOT NULL;
"""

_LIVE = "(expires_at IS NULL OR expires_at > ?)"
_UPSERT = ("INSERT INTO state (grp, key, value, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT (grp, key) "
           "DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at")


class SqliteStateStore(StateStore):
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._db = open_db(self.path, _SCHEMA)
        self.file = DbFile(self._db, self.path, "state")  # storage faults become StorageError
        self._next_sweep = 0.0  # sweep on first use: entries may have expired while we were down
        # whether a row may carry an expiry: found out by each sweep, and set by a write with a ttl; while it is
        # False a set is one upsert, with no expired row to drop first
        self._expiring = True

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        with self.file.guard():
            return fn(*args)

    def _now(self) -> float:
        now = time.time()
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_INTERVAL
            self._db.execute("DELETE FROM state WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,))
            self._expiring = self._db.execute(  # the partial index state_expiry: no scan
                "SELECT 1 FROM state WHERE expires_at IS NOT NULL LIMIT 1").fetchone() is not None
        return now

    def _get_sync(self, group: str, key: str) -> Any | None:
        now = self._now()
        row = self._db.execute(
            "SELECT value, expires_at FROM state WHERE grp = ? AND key = ?", (group, key)).fetchone()
        if row is None:
            return None
        if row[1] is not None and row[1] <= now:
            self._db.execute(
                "DELETE FROM state WHERE grp = ? AND key = ? AND expires_at <= ?", (group, key, now))
            return None
        return decode_value(row[0])

    def _set_sync(self, group: str, key: str, blob: bytes, ttl: float | None) -> None:
        now = self._now()
        expires_at = expiry(ttl, now)
        if not self._expiring and expires_at is None:  # one statement, its own transaction: a third of the cost
            self._db.execute(_UPSERT, (group, key, blob, None))
            return
        self._expiring = True
        with transaction(self._db):
            # an expired key set again counts as new: drop the row so the insert goes last
            self._db.execute(
                "DELETE FROM state WHERE grp = ? AND key = ? AND expires_at <= ?", (group, key, now))
            self._db.execute(_UPSERT, (group, key, blob, expires_at))

    def _update_sync(self, group: str, key: str, ops: list[dict[str, Any]], ttl: float | None) -> Any:
        # nothing awaits in here, so no other task of the loop can write the key between read and write
        now = self._now()
        row = self._db.execute(
            f"SELECT value, expires_at FROM state WHERE grp = ? AND key = ? AND {_LIVE}", (group, key, now)).fetchone()
        value = apply_ops(decode_value(row[0]) if row else None, ops)
        blob = encode_value(value)
        if ttl is not None:
            self._expiring = True
        with transaction(self._db):
            if row is None:
                self._db.execute("DELETE FROM state WHERE grp = ? AND key = ?", (group, key))  # expired: goes last
                self._db.execute("INSERT INTO state (grp, key, value, expires_at) VALUES (?, ?, ?, ?)",
                                 (group, key, blob, expiry(ttl, now)))
            else:
                self._db.execute("UPDATE state SET value = ?, expires_at = ? WHERE grp = ? AND key = ?",
                                 (blob, expiry(ttl, now) if ttl is not None else row[1], group, key))
        return value

    def _delete_sync(self, group: str, key: str) -> Any | None:
        now = self._now()
        # fetchall, not fetchone: a RETURNING statement left unfinished keeps its transaction open
        rows = self._db.execute(
            "DELETE FROM state WHERE grp = ? AND key = ? RETURNING value, expires_at", (group, key),
        ).fetchall()
        if not rows or (rows[0][1] is not None and rows[0][1] <= now):
            return None
        return decode_value(rows[0][0])

    def _get_group_sync(self, group: str) -> list[Any]:
        now = self._now()
        rows = self._db.execute(
            f"SELECT value FROM state WHERE grp = ? AND {_LIVE} ORDER BY rowid", (group, now))
        return [decode_value(blob) for (blob,) in rows]

    def _clear_sync(self, group: str) -> None:
        self._db.execute("DELETE FROM state WHERE grp = ?", (group,))

    def _groups_sync(self) -> list[str]:
        now = self._now()
        rows = self._db.execute(f"SELECT DISTINCT grp FROM state WHERE {_LIVE} ORDER BY grp", (now,))
        return [grp for (grp,) in rows]

    async def get(self, group: str, key: str) -> Any | None:
        check_group_key(group, key)
        return self._call(self._get_sync, group, key)

    async def set(self, group: str, key: str, value: Any, ttl: float | None = None) -> Any:
        check_group_key(group, key)
        self._call(self._set_sync, group, key, encode_value(value), ttl)
        return value

    async def update(self, group: str, key: str, ops: list[dict[str, Any]], ttl: float | None = None) -> Any:
        check_group_key(group, key)
        return self._call(self._update_sync, group, key, ops, ttl)

    async def delete(self, group: str, key: str) -> Any | None:
        check_group_key(group, key)
        return self._call(self._delete_sync, group, key)

    async def get_group(self, group: str) -> list[Any]:
        check_name("group", group)
        return self._call(self._get_group_sync, group)

    async def clear(self, group: str) -> None:
        check_name("group", group)
        self._call(self._clear_sync, group)

    async def groups(self) -> list[str]:
        return self._call(self._groups_sync)

    def _entries_sync(self, group: str) -> list[dict[str, Any]]:
        now = self._now()
        rows = self._db.execute(
            f"SELECT key, value, expires_at FROM state WHERE grp = ? AND {_LIVE} ORDER BY rowid", (group, now))
        return [{"key": key, "value": decode_value(blob), "expiresAt": exp} for key, blob, exp in rows]

    async def entries(self, group: str) -> list[dict[str, Any]]:
        check_name("group", group)
        return self._call(self._entries_sync, group)

    async def close(self) -> None:
        self._db.close()
