"""The durable queue's tables and the statements its hot path runs (sqlite.py is the queue itself)."""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

from ..event import Event

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: FIFO order is id order
    step TEXT NOT NULL,
    grp TEXT,                              -- FIFO message group, only for fifo steps
    event BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    available_at REAL NOT NULL,
    leased INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    last_error TEXT
);
DROP INDEX IF EXISTS deliveries_by_step;
CREATE INDEX IF NOT EXISTS deliveries_of_step ON deliveries (step, id);
CREATE INDEX IF NOT EXISTS deliveries_by_group ON deliveries (step, grp, id) WHERE grp IS NOT NULL;
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    step TEXT NOT NULL,
    grp TEXT,
    event BLOB NOT NULL,
    attempts INTEGER NOT NULL,
    error TEXT NOT NULL,
    stack TEXT NOT NULL,
    first_at REAL NOT NULL,
    failed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS emitted (id TEXT PRIMARY KEY, at REAL NOT NULL);  -- idempotency keys
"""
RETURNING = "RETURNING id, attempts, created_at, last_error"  # the event: in hand, or read by STORED
TAKE = f"""UPDATE deliveries SET leased = 1, attempts = attempts + 1 WHERE id IN (
    SELECT id FROM deliveries WHERE step = ? AND leased = 0 AND available_at <= ? ORDER BY id LIMIT ?) {RETURNING}"""
TAKE_FIFO = f"""UPDATE deliveries SET leased = 1, attempts = attempts + 1 WHERE id IN (
    SELECT d.id FROM deliveries d WHERE d.step = ? AND d.leased = 0 AND d.available_at <= ?
      AND (d.grp IS NULL OR d.id = (SELECT MIN(e.id) FROM deliveries e WHERE e.step = d.step AND e.grp = d.grp))
    ORDER BY d.id LIMIT ?) {RETURNING}"""
FIELDS = 5
CHUNKS = (64, 32, 16, 8, 4, 2, 1)
INSERTS = {n: "INSERT INTO deliveries (step, grp, event, available_at, created_at) VALUES "
           + ",".join(["(?, NULLIF(?, ''), ?, ?, ?)"] * n) for n in CHUNKS}
STORED = "SELECT id, event FROM deliveries WHERE id IN (SELECT value FROM json_each(?))"
# a delivery to the dead-letter store (error, stack, failed_at, id): it keeps its id (never reused), so the
# log and `steppe dlq` name one id; DELETE_ONE follows it in the same transaction
BURY = ("INSERT OR REPLACE INTO dead_letters (id, step, grp, event, attempts, error, stack, first_at, failed_at) "
        "SELECT id, step, grp, event, attempts, ?, ?, created_at, ? FROM deliveries WHERE id = ?")
DELETE_ONE = "DELETE FROM deliveries WHERE id = ?"
NEXT_STEP = "SELECT step FROM deliveries WHERE step > ? ORDER BY step LIMIT 1"  # an index seek (deliveries_of_step)


def dead_letters_query(step: str | None, ids: list[int] | None) -> tuple[str, list[Any]]:
    """The listing of dead letters of one step and/or with these ids (all of them without either)."""
    where: list[str] = []
    params: list[Any] = []
    if step is not None:
        where.append("step = ?")
        params.append(step)
    if ids is not None:
        where.append(f"id IN ({','.join('?' * len(ids))})")
        params.extend(ids)
    sql = "SELECT id, step, event, attempts, error, stack, first_at, failed_at, grp FROM dead_letters"
    return sql + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id", params


def insert_rows(db: sqlite3.Connection, rows: list[Any]) -> None:
    """Insert the rows (five values each, flat) with one statement per chunk of 64, 32, … 1 rows: a row costs
    half what it does in executemany (bound and stepped one at a time), and the statement cache holds seven
    statements at most."""
    done, count = 0, len(rows) // FIELDS
    for size in CHUNKS:
        while count - done >= size:
            db.execute(INSERTS[size], rows[done * FIELDS:(done + size) * FIELDS])
            done += size


def waiting_elsewhere(db: sqlite3.Connection, steps: set[str]) -> dict[str, int]:
    """Deliveries of steps other than `steps`, by step: one index seek per step that has deliveries, and only the
    other steps' rows counted (a backlog of the project's own steps is not scanned at each start and reload)."""
    found, step = {}, ""  # step names are never empty
    while row := db.execute(NEXT_STEP, (step,)).fetchone():
        if (step := row[0]) not in steps:
            found[step] = db.execute("SELECT COUNT(*) FROM deliveries WHERE step = ?", (step,)).fetchone()[0]
    return found


def decode(blob: bytes) -> Event:
    return Event.from_dict(orjson.loads(blob))
