"""`.steppe/telemetry.db`: logs and invocations, written in batches by a background task (never on the
request path), kept by age and by size, and queried by the Workbench's API.

Records wait in memory until the next flush (every `interval` seconds, or sooner when `batch` are
waiting); a store that cannot keep up drops the oldest waiting records and says so in the health registry.
Each write is one `executemany` per table; traces are not stored apart: a trace is its invocations,
summarised when read, and the count of those the recorder left out past its per-trace cap (`unrecorded`).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from ..db import open_db, transaction
from .codec import COLUMNS, Row, bar, decode, split

SCHEMA = """
CREATE TABLE IF NOT EXISTS logs (
  id INTEGER PRIMARY KEY, time REAL NOT NULL, level TEXT NOT NULL, msg TEXT NOT NULL, source TEXT,
  step TEXT, trace_id TEXT, flows TEXT, fields TEXT);
CREATE INDEX IF NOT EXISTS logs_trace ON logs (trace_id) WHERE trace_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS invocations (
  rowid INTEGER PRIMARY KEY, id TEXT NOT NULL, trace_id TEXT NOT NULL, step TEXT NOT NULL, trigger TEXT NOT NULL,
  language TEXT, start REAL NOT NULL, duration REAL, status TEXT NOT NULL, attempt INTEGER, topic TEXT,
  error TEXT, flows TEXT, body BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS invocations_trace ON invocations (trace_id);
CREATE INDEX IF NOT EXISTS invocations_step ON invocations (step);
CREATE TABLE IF NOT EXISTS unrecorded (
  trace_id TEXT PRIMARY KEY, count INTEGER NOT NULL, time REAL NOT NULL) WITHOUT ROWID;
"""
# Rows are written in time order, so rowid order is time order: listing, paging and pruning go by rowid
# and no time index has to be kept up on every write.
SCAN = 20_000  # newest invocations looked through to find the traces a listing shows


class TelemetryStore:
    def __init__(self, path: Path, *, max_age: float = 7 * 86400, max_bytes: int = 200 * 1024 * 1024,
                 interval: float = 0.2, batch: int = 2000, backlog: int = 20_000,
                 on_problem: Any = None) -> None:
        self.path, self.max_age, self.max_bytes = path, max_age, max_bytes
        self.interval, self.batch, self.backlog = interval, batch, backlog
        self._on_problem = on_problem or (lambda status, reason: None)
        self._db = open_db(path, SCHEMA, auto_vacuum=True)  # deleted pages go back to the disk
        self._db.execute("PRAGMA cache_size=-1024")  # KiB: writes append, reads are recent; keep RSS small
        self._lock = threading.Lock()  # one connection, used from the flush thread and the API's reads
        self._logs: list[dict[str, Any]] = []
        self._invocations: list[Row] = []
        self._unrecorded: dict[str, int] = {}  # trace id → its invocations past the recorder's cap, since the flush
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._next_prune = 0.0
        self.dropped = 0

    # -- the hot path: appending to a list --------------------------------------------------------------

    def add_log(self, record: dict[str, Any]) -> None:
        self._logs.append(record)
        self._pressure(self._logs)

    def add_invocation(self, row: Row) -> None:
        """An ended invocation, as codec.encode made it."""
        self._invocations.append(row)
        self._pressure(self._invocations)

    def add_unrecorded(self, trace_id: str) -> None:
        """One more invocation of a recorded trace that was past its cap (counted, not kept)."""
        self._unrecorded[trace_id] = self._unrecorded.get(trace_id, 0) + 1

    def pending_unrecorded(self, trace_id: str) -> int:
        return self._unrecorded.get(trace_id, 0)

    def _pressure(self, pending: list[Any]) -> None:
        if len(pending) >= self.batch:
            self._wake.set()
        if len(pending) > self.backlog:
            cut = len(pending) - self.backlog
            del pending[:cut]
            self.dropped += cut
            self._on_problem("degraded", "telemetry is not written as fast as it arrives; the oldest "
                                         "waiting logs and traces were dropped")

    # -- the background writer ----------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except TimeoutError:
                pass
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        logs, invocations, unrecorded = self._logs, self._invocations, self._unrecorded
        if not logs and not invocations and not unrecorded and time.time() < self._next_prune:
            return
        self._logs, self._invocations, self._unrecorded = [], [], {}
        try:
            await asyncio.to_thread(self._write, logs, invocations, unrecorded)
            if not self.dropped:
                self._on_problem("ok", "")
        except sqlite3.Error as e:
            self.dropped += len(logs) + len(invocations) + len(unrecorded)
            self._on_problem("degraded", f"telemetry could not be written ({type(e).__name__}); recent logs "
                                         "and traces are missing from the Workbench")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.flush()
        with self._lock:
            self._db.close()

    def _write(self, logs: list[dict[str, Any]], invocations: list[Row], unrecorded: dict[str, int]) -> None:
        with self._lock:
            with transaction(self._db):
                if logs:
                    self._db.executemany(
                        "INSERT INTO logs (time, level, msg, source, step, trace_id, flows, fields) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [(r["time"], r["level"], r["msg"], r.get("source"), r.get("step"), r.get("traceId"),
                          bar(r.get("flows")),
                          orjson.dumps(r["fields"], default=str).decode() if r.get("fields") else None)
                         for r in logs])
                if invocations:
                    self._db.executemany(f"INSERT INTO invocations ({COLUMNS}) VALUES "
                                         "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", invocations)
                if unrecorded:
                    now = time.time()
                    self._db.executemany(
                        "INSERT INTO unrecorded (trace_id, count, time) VALUES (?, ?, ?) ON CONFLICT (trace_id) "
                        "DO UPDATE SET count = count + excluded.count, time = excluded.time",
                        [(trace, n, now) for trace, n in unrecorded.items()])
            if time.time() >= self._next_prune:
                self._prune()

    def _prune(self) -> None:
        """Drop what is older than max_age, then the oldest tenth until the data fits in max_bytes."""
        self._next_prune = time.time() + 30
        cutoff = time.time() - self.max_age
        for table, column in (("logs", "time"), ("invocations", "start")):
            # everything before the first row that is new enough goes
            self._db.execute(f"DELETE FROM {table} WHERE rowid < coalesce((SELECT rowid FROM {table} WHERE "
                             f"{column} >= ? ORDER BY rowid LIMIT 1), (SELECT max(rowid) + 1 FROM {table}))",
                             (cutoff,))
        self._db.execute("DELETE FROM unrecorded WHERE time < ?", (cutoff,))
        for _ in range(20):
            if self.used_bytes() <= self.max_bytes:
                break
            for table in ("logs", "invocations"):
                self._db.execute(f"DELETE FROM {table} WHERE rowid <= (SELECT rowid FROM {table} "
                                 f"ORDER BY rowid LIMIT 1 OFFSET (SELECT COUNT(*) / 10 FROM {table}))")
            self._db.execute("DELETE FROM unrecorded WHERE trace_id NOT IN (SELECT trace_id FROM invocations)")
        self._db.executescript("PRAGMA incremental_vacuum;")  # run to the end: each step frees one page

    def used_bytes(self) -> int:
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        size = self._db.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)

    # -- reads (the Workbench API) -------------------------------------------------------------------------

    def _rows(self, sql: str, args: list[Any]) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def logs(self, *, level: str | None = None, step: str | None = None, flow: str | None = None,
             trace_id: str | None = None, text: str | None = None, before: int | None = None,
             limit: int = 1000) -> list[dict[str, Any]]:
        """The newest matching log records (at most `limit`, ids below `before`), oldest first."""
        from ..logs import LEVELS

        where: list[str] = []
        args: list[Any] = []
        if level:
            ok = [k for k, v in LEVELS.items() if v >= LEVELS.get(level, 0)]
            where.append("level IN (" + ",".join("?" * len(ok)) + ")")
            args += ok
        for column, value in (("step", step), ("trace_id", trace_id)):
            if value:
                where.append(f"{column} = ?")
                args.append(value)
        if flow:
            where.append("flows LIKE ?")
            args.append(f"%|{flow}|%")
        if text:
            where.append("instr(lower(msg), lower(?)) > 0")
            args.append(text)
        if before:
            where.append("id < ?")
            args.append(before)
        sql = ("SELECT id, time, level, msg, source, step, trace_id, flows, fields FROM logs"
               + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC LIMIT ?")
        out = []
        for id_, t, lvl, msg, source, st, trace, flows, fields in reversed(self._rows(sql, [*args, limit])):
            record: dict[str, Any] = {"id": id_, "time": t, "level": lvl, "msg": msg, "source": source}
            if st:
                record["step"] = st
            if trace:
                record["traceId"] = trace
            if flows:
                record["flows"] = split(flows)
            if fields:
                record["fields"] = orjson.loads(fields)
            out.append(record)
        return out

    def traces(self, *, status: str | None = None, step: str | None = None, flow: str | None = None,
               limit: int = 200) -> list[dict[str, Any]]:
        """Summaries of the traces with the newest invocations (among the last SCAN that match `step`,
        `flow` and, for "error", `status`), newest first."""
        where: list[str] = []
        args: list[Any] = []
        if step:
            where.append("step = ?")
            args.append(step)
        if flow:
            where.append("flows LIKE ?")
            args.append(f"%|{flow}|%")
        if status == "error":
            where.append("status = 'error'")
        sql = ("SELECT trace_id FROM invocations" + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY rowid DESC LIMIT ?")
        ids = list(dict.fromkeys(t for (t,) in self._rows(sql, [*args, SCAN])))
        out: list[dict[str, Any]] = []
        for n in range(0, len(ids), 200):
            out += [s for s in self._summaries(ids[n:n + 200]) if status in (None, "", s["status"])]
            if len(out) >= limit:
                break
        return out[:limit]

    def _summaries(self, ids: list[str]) -> list[dict[str, Any]]:
        rows = self._rows("SELECT trace_id, step, trigger, start, duration, status, language, flows FROM invocations "
                          f"WHERE trace_id IN ({','.join('?' * len(ids))})", ids)
        traces: dict[str, dict[str, Any]] = {}
        for trace, step, trigger, start, duration, status, language, flows in rows:
            end = start + (duration or 0) / 1000
            t = traces.get(trace)
            if t is None:
                t = traces[trace] = {"traceId": trace, "entry": step, "trigger": trigger, "start": start, "end": end,
                                     "status": "ok", "invocations": 0, "errors": 0, "languages": set(),
                                     "steps": set(), "flows": set()}
            elif start < t["start"]:
                t["entry"], t["trigger"], t["start"] = step, trigger, start
            t["end"] = max(t["end"], end)
            t["invocations"] += 1
            if status == "error":
                t["errors"] += 1
                t["status"] = "error"
            t["languages"].add(language)
            t["steps"].add(step)
            t["flows"].update(split(flows))
        marks = ",".join("?" * len(ids))
        counts = dict(self._rows(f"SELECT trace_id, count FROM unrecorded WHERE trace_id IN ({marks})", ids))
        out = []
        for trace in ids:  # in the order asked: newest first
            if (t := traces.get(trace)) is None:
                continue
            t["duration"] = round((t.pop("end") - t["start"]) * 1000, 3)
            for key in ("languages", "steps", "flows"):
                t[key] = sorted(t[key])
            t["notRecorded"] = counts.get(trace, 0) + self.pending_unrecorded(trace)
            out.append(t)
        return out

    def not_recorded(self, trace_id: str) -> int:
        """Invocations of the trace past the recorder's cap: counted, not kept."""
        rows = self._rows("SELECT count FROM unrecorded WHERE trace_id = ?", [trace_id])
        return (rows[0][0] if rows else 0) + self.pending_unrecorded(trace_id)

    def invocations(self, *, trace_id: str | None = None, step: str | None = None, trigger: str | None = None,
                    limit: int = 5000) -> list[dict[str, Any]]:
        """The newest matching invocations (at most `limit`), in start order."""
        where, args = [], []
        for column, value in (("trace_id", trace_id), ("step", step), ("trigger", trigger)):
            if value:
                where.append(f"{column} = ?")
                args.append(value)
        sql = (f"SELECT {COLUMNS} FROM invocations" + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY rowid DESC LIMIT ?")
        return sorted((decode(row) for row in self._rows(sql, [*args, limit])), key=lambda i: i["start"])
