"""`.steppe/telemetry.db`: logs and invocations, written in batches by a background task (never on the
request path), kept by age and by size, and queried by the Workbench's API.

Records wait in memory until the next flush (every `interval` seconds, or sooner when `batch` are
waiting); a store that cannot keep up drops the oldest waiting records and says so in the health registry.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from ..db import open_db, transaction
from .recorder import Invocation

log = logging.getLogger("steppe.telemetry")

SCHEMA = """
CREATE TABLE IF NOT EXISTS logs (
  id INTEGER PRIMARY KEY, time REAL NOT NULL, level TEXT NOT NULL, msg TEXT NOT NULL, source TEXT,
  step TEXT, trace_id TEXT, flows TEXT, fields TEXT);
CREATE INDEX IF NOT EXISTS logs_trace ON logs (trace_id) WHERE trace_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS invocations (
  rowid INTEGER PRIMARY KEY, id TEXT NOT NULL, trace_id TEXT NOT NULL, step TEXT NOT NULL, trigger TEXT NOT NULL,
  language TEXT, start REAL NOT NULL, duration REAL, status TEXT NOT NULL, attempt INTEGER, topic TEXT,
  error TEXT, body BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS invocations_trace ON invocations (trace_id, start);
CREATE INDEX IF NOT EXISTS invocations_step ON invocations (step, start);
CREATE TABLE IF NOT EXISTS traces (
  trace_id TEXT PRIMARY KEY, entry TEXT NOT NULL, trigger TEXT NOT NULL, start REAL NOT NULL,
  end REAL NOT NULL, status TEXT NOT NULL, count INTEGER NOT NULL, errors INTEGER NOT NULL,
  languages TEXT NOT NULL, steps TEXT NOT NULL, flows TEXT NOT NULL);
"""
# Traces are listed newest first by rowid (the order their first invocation was written, close to their
# start order): one index fewer to keep up on every write.

MAX_PAYLOAD = 16 * 1024  # bytes of an input or operation payload kept per record
# request headers that carry credentials: never written to disk
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"})
_COLUMNS = "id, trace_id, step, trigger, language, start, duration, status, attempt, topic, error, body"


def _payload(value: Any) -> bytes:
    """A payload as kept, JSON-encoded: itself when small, else a marked, truncated text."""
    raw = orjson.dumps(value, default=str)
    if len(raw) <= MAX_PAYLOAD:
        return raw
    return orjson.dumps({"truncated": True, "bytes": len(raw), "head": raw[:MAX_PAYLOAD].decode("utf-8", "replace")})


def _input(inv: Invocation) -> Any:
    value = inv.input
    if inv.trigger == "api" and isinstance(value, dict) and isinstance(value.get("headers"), dict):
        headers = value["headers"]
        if SECRET_HEADERS.intersection(headers):
            value = {**value, "headers": {k: "[redacted]" if k in SECRET_HEADERS else v for k, v in headers.items()}}
    return value


def _body(inv: Invocation) -> bytes:
    """What the columns do not hold: flows, stack, input and operations (most invocations have few)."""
    ops = b",".join(b'{"op":%s,"at":%.3f,"ms":%.3f,"target":%s,"data":%s}'
                    % (orjson.dumps(op), at, ms, orjson.dumps(target), _payload(data))
                    for op, at, ms, target, data in inv.ops)
    return b'{"flows":%s,"stack":%s,"input":%s,"ops":[%s]}' % (
        orjson.dumps(inv.flows), orjson.dumps(inv.stack), _payload(_input(inv)), ops)


def _row_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    id_, trace, step, trigger, language, start, duration, status, attempt, topic, error, body = row
    extra = orjson.loads(body)
    return {"id": id_, "traceId": trace, "step": step, "trigger": trigger, "language": language, "start": start,
            "duration": duration, "status": status, "attempt": attempt, "topic": topic, "error": error,
            "flows": extra["flows"], "stack": extra["stack"], "input": extra["input"],
            "opCounts": dict(Counter(o["op"] for o in extra["ops"])), "ops": extra["ops"]}


def _bar(items: list[str] | set[str]) -> str:
    """`|a|b|`: a set stored so that `LIKE '%|a|%'` finds a member."""
    return "|" + "|".join(sorted(items)) + "|" if items else ""


class TelemetryStore:
    def __init__(self, path: Path, *, max_age: float = 7 * 86400, max_bytes: int = 200 * 1024 * 1024,
                 interval: float = 0.2, batch: int = 2000, backlog: int = 20_000,
                 on_problem: Any = None) -> None:
        self.path, self.max_age, self.max_bytes = path, max_age, max_bytes
        self.interval, self.batch, self.backlog = interval, batch, backlog
        self._on_problem = on_problem or (lambda status, reason: None)
        if not path.exists():  # deleted pages go back to the disk; settable only before WAL and the tables
            with sqlite3.connect(str(path)) as fresh:
                fresh.execute("PRAGMA auto_vacuum=INCREMENTAL")
                fresh.executescript(SCHEMA)
            fresh.close()
        self._db = open_db(path)
        self._db.execute("PRAGMA cache_size=-1024")  # KiB: writes append, reads are recent; keep RSS small
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()  # one connection, used from the flush thread and the API's reads
        self._logs: list[dict[str, Any]] = []
        self._invocations: list[Invocation] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._next_prune = 0.0
        self.dropped = 0

    # -- the hot path: appending to a list --------------------------------------------------------------

    def add_log(self, record: dict[str, Any]) -> None:
        self._logs.append(record)
        self._pressure(self._logs)

    def add_invocation(self, inv: Invocation) -> None:
        self._invocations.append(inv)
        self._pressure(self._invocations)

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
        logs, invocations = self._logs, self._invocations
        if not logs and not invocations and time.time() < self._next_prune:
            return
        self._logs, self._invocations = [], []
        try:
            await asyncio.to_thread(self._write, logs, invocations)
            if not self.dropped:
                self._on_problem("ok", "")
        except sqlite3.Error as e:
            self.dropped += len(logs) + len(invocations)
            self._on_problem("degraded", f"telemetry could not be written ({type(e).__name__}); recent logs "
                                         "and traces are missing from the Workbench")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.flush()
        with self._lock:
            self._db.close()

    def _write(self, logs: list[dict[str, Any]], invocations: list[Invocation]) -> None:
        with self._lock:
            with transaction(self._db):
                self._insert(logs, invocations)
            if time.time() >= self._next_prune:
                self._prune()

    def _insert(self, logs: list[dict[str, Any]], invocations: list[Invocation]) -> None:
        if logs:
            self._db.executemany(
                "INSERT INTO logs (time, level, msg, source, step, trace_id, flows, fields) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(r["time"], r["level"], r["msg"], r.get("source"), r.get("step"), r.get("traceId"),
                  _bar(r.get("flows") or []),
                  orjson.dumps(r["fields"], default=str).decode() if r.get("fields") else None)
                 for r in logs])
        if invocations:
            self._db.executemany(
                f"INSERT INTO invocations ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(i.id, i.trace_id, i.step, i.trigger, i.language, i.started, i.duration, i.status, i.attempt,
                  i.topic, i.error, _body(i)) for i in invocations])
            self._summarise(invocations)

    def _summarise(self, invocations: list[Invocation]) -> None:
        """Fold the batch into the traces table: one row per trace, merged with what it already holds."""
        traces: dict[str, list[Any]] = {}  # trace → [entry, trigger, start, end, errors, count, langs, steps, flows]
        for i in invocations:
            end = i.started + (i.duration or 0) / 1000
            t = traces.get(i.trace_id)
            if t is None:
                traces[i.trace_id] = [i.step, i.trigger, i.started, end, int(i.status == "error"), 1,
                                      {i.language}, {i.step}, set(i.flows)]
                continue
            if i.started < t[2]:
                t[0], t[1], t[2] = i.step, i.trigger, i.started
            t[3] = max(t[3], end)
            t[4] += i.status == "error"
            t[5] += 1
            t[6].add(i.language)
            t[7].add(i.step)
            t[8].update(i.flows)
        # one upsert per trace, merged in SQL (a later batch can hold later deliveries of an earlier trace);
        # the sets are `|a|b|` strings: appended when new to the row, deduplicated when read
        self._db.executemany(
            "INSERT INTO traces (trace_id, entry, trigger, start, end, status, count, errors, languages, steps, flows) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (trace_id) DO UPDATE SET "
            "entry = CASE WHEN excluded.start < start THEN excluded.entry ELSE entry END, "
            "trigger = CASE WHEN excluded.start < start THEN excluded.trigger ELSE trigger END, "
            "start = min(start, excluded.start), end = max(end, excluded.end), "
            "status = CASE WHEN errors + excluded.errors > 0 THEN 'error' ELSE 'ok' END, "
            "count = count + excluded.count, errors = errors + excluded.errors, "
            + ", ".join(f"{c} = CASE WHEN instr({c}, excluded.{c}) > 0 THEN {c} ELSE {c} || excluded.{c} END"
                        for c in ("languages", "steps", "flows")),
            [(trace, t[0], t[1], t[2], t[3], "error" if t[4] else "ok", t[5], t[4], _bar(t[6]), _bar(t[7]),
              _bar(t[8])) for trace, t in traces.items()])

    def _prune(self) -> None:
        """Drop what is older than max_age, then the oldest tenth until the data fits in max_bytes."""
        self._next_prune = time.time() + 30
        cutoff = time.time() - self.max_age
        for table, column in (("logs", "time"), ("invocations", "start"), ("traces", "end")):
            # rows are written in time order: everything before the first row that is new enough goes
            self._db.execute(f"DELETE FROM {table} WHERE rowid < coalesce((SELECT rowid FROM {table} WHERE "
                             f"{column} >= ? ORDER BY rowid LIMIT 1), (SELECT max(rowid) + 1 FROM {table}))",
                             (cutoff,))
        for _ in range(20):
            if self.used_bytes() <= self.max_bytes:
                break
            for table in ("logs", "invocations", "traces"):  # rowid order is write order: oldest first
                self._db.execute(f"DELETE FROM {table} WHERE rowid <= (SELECT rowid FROM {table} "
                                 f"ORDER BY rowid LIMIT 1 OFFSET (SELECT COUNT(*) / 10 FROM {table}))")
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
            where.append("level IN (" + ",".join("?" * len(ok := [k for k, v in LEVELS.items()
                                                                  if v >= LEVELS.get(level, 0)])) + ")")
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
        rows = self._rows(sql, [*args, limit])
        out = []
        for id_, t, lvl, msg, source, st, trace, flows, fields in reversed(rows):
            record: dict[str, Any] = {"id": id_, "time": t, "level": lvl, "msg": msg, "source": source}
            if st:
                record["step"] = st
            if trace:
                record["traceId"] = trace
            if flows:
                record["flows"] = flows.strip("|").split("|")
            if fields:
                record["fields"] = orjson.loads(fields)
            out.append(record)
        return out

    def traces(self, *, status: str | None = None, step: str | None = None, flow: str | None = None,
               limit: int = 200) -> list[dict[str, Any]]:
        where, args = [], []
        if status:
            where.append("status = ?")
            args.append(status)
        for column, value in (("steps", step), ("flows", flow)):
            if value:
                where.append(f"{column} LIKE ?")
                args.append(f"%|{value}|%")
        sql = ("SELECT trace_id, entry, trigger, start, end, status, count, errors, languages, steps, flows "
               "FROM traces" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY rowid DESC LIMIT ?")
        return [{"traceId": t, "entry": e, "trigger": tr, "start": s, "duration": round((en - s) * 1000, 3),
                 "status": st, "invocations": c, "errors": er, "languages": _split(la), "steps": _split(sp),
                 "flows": _split(fl)}
                for t, e, tr, s, en, st, c, er, la, sp, fl in self._rows(sql, [*args, limit])]

    def invocations(self, *, trace_id: str | None = None, step: str | None = None, trigger: str | None = None,
                    limit: int = 5000) -> list[dict[str, Any]]:
        where, args = [], []
        for column, value in (("trace_id", trace_id), ("step", step), ("trigger", trigger)):
            if value:
                where.append(f"{column} = ?")
                args.append(value)
        sql = (f"SELECT {_COLUMNS} FROM invocations" + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY start DESC LIMIT ?")
        return [_row_dict(row) for row in reversed(self._rows(sql, [*args, limit]))]


def _split(bar: str) -> list[str]:
    return sorted({x for x in bar.split("|") if x})
