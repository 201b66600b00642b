"""Structured logs: every record carries level, message, and where known the step, trace and flows.

`dev` prints them for people, `start` as one JSON object per line; the last records stay in memory for
the admin API.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import IO, Any

import orjson

from .redact import Redactor

LEVELS = {"debug": 10, "info": 20, "warn": 30, "warning": 30, "error": 40}
# characters of a record's message, and bytes of its fields as JSON, that are kept: a handler printing 10 MB
# lines made the host spend ~0.5 s per record storing, printing and feeding it (its runner, blocked on the
# pipe meanwhile, missed its pings) and grew the Workbench's database by hundreds of MB
RECORD_MAX = 64 * 1024
_COLORS = {"debug": "\033[90m", "info": "\033[36m", "warn": "\033[33m", "error": "\033[31m"}
# control bytes a handler may print (escape sequences that clear the screen, move the cursor, set the title):
# shown as \xNN in pretty output, never sent to the terminal; newline and tab stay
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """Text safe to print on a terminal: control bytes (but newlines and tabs) as \\xNN."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class LogBook:
    def __init__(self, pretty: bool = True, out: IO[str] | None = None, level: str = "info",
                 keep: int = 2000) -> None:
        self.pretty = pretty
        self.out: IO[str] | None = out or sys.stderr  # None once it cannot be written (its reader went away)
        self.min_level = LEVELS.get(level, 20)
        self.recent: deque[dict[str, Any]] = deque(maxlen=keep)
        self._color = pretty and self.out.isatty()
        self.redactor = Redactor()  # the host sets its configured keys; safe defaults until then
        self.sinks: list[Callable[[dict[str, Any]], None]] = []  # told every record (the telemetry store)
        self._held: list[dict[str, Any]] | None = None  # records kept back by hold(), until release()

    def write(self, level: str, msg: str, *, step: str | None = None, trace_id: str | None = None,
              flows: list[str] | None = None, source: str = "host",
              fields: dict[str, Any] | None = None) -> None:
        level = "warn" if level == "warning" else level if level in LEVELS else "info"
        if len(msg) > RECORD_MAX:
            msg = f"{msg[:RECORD_MAX]}… [{len(msg) - RECORD_MAX} more characters cut: a log record keeps at most " \
                  f"{RECORD_MAX}]"
        msg = self.redactor.text(msg)  # before the record is kept, printed or handed on
        if fields:
            if (size := len(orjson.dumps(fields, default=str))) > RECORD_MAX:
                fields = {"truncated": f"the fields were {size} bytes as JSON, over the {RECORD_MAX} a log record "
                                       "keeps"}
            fields = self.redactor.value(fields)
        record: dict[str, Any] = {"time": time.time(), "level": level, "msg": msg, "source": source}
        if step:
            record["step"] = step
        if trace_id:
            record["traceId"] = trace_id
        if flows:
            record["flows"] = flows
        if fields:
            record["fields"] = fields
        self.recent.append(record)
        if self._held is not None:
            self._held.append(record)
            return
        self._emit(record)

    def hold(self) -> None:
        """Keep records back from the sinks and the output until release(), or drop them (drop_held): the
        runners start before the host is built (early_start.py), and a start that fails building it says so
        in one line, as it did before any runner was spawned."""
        self._held = []

    def release(self) -> None:
        held, self._held = self._held or [], None
        for record in held:
            self._emit(record)

    def drop_held(self) -> None:
        self._held = None

    def _emit(self, record: dict[str, Any]) -> None:
        for sink in self.sinks:
            sink(record)
        if LEVELS[record["level"]] < self.min_level or self.out is None:
            return
        try:
            self.out.write(self._pretty(record) if self.pretty else orjson.dumps(record, default=str).decode())
            self.out.write("\n")
            self.out.flush()
        except (OSError, ValueError) as e:  # `steppe dev | head`, a log shipper that died: serve on without it
            self.out = None  # so this record is kept and handed on, never printed
            self.write("warn", f"the log output cannot be written ({type(e).__name__}: {e}); records are kept for "
                       "the Workbench and `GET /__steppe/logs` only")

    def _pretty(self, r: dict[str, Any]) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(r["time"]))
        level = r["level"].upper().ljust(5)
        if self._color:
            level = f"{_COLORS[r['level']]}{level}\033[0m"
        where = f" [{r['step']}]" if "step" in r else f" ({r['source']})" if r["source"] != "host" else ""
        extra, blocks = "", []
        for key, value in (r.get("fields") or {}).items():
            if isinstance(value, str) and "\n" in value.strip():  # a stack trace: as a terminal shows one
                blocks.append(value.rstrip("\n"))
            else:
                extra += f" {key}={orjson.dumps(value, default=str).decode()}"
        trace = f" trace={r['traceId'][:8]}" if "traceId" in r else ""
        text = f"{where} {r['msg']}{extra}{trace}" + "".join(f"\n{block}" for block in blocks)
        # the level's colour is the only escape sequence printed; continuation lines indent under their record
        return f"{stamp} {level}" + visible(text).replace("\n", "\n    ")

    def query(self, *, trace_id: str | None = None, step: str | None = None,
              limit: int = 200) -> list[dict[str, Any]]:
        rows = [r for r in self.recent
                if (trace_id is None or r.get("traceId") == trace_id) and (step is None or r.get("step") == step)]
        return rows[-limit:]


class LogBookHandler(logging.Handler):
    """Sends records of Python loggers (`steppe.*`, and uvicorn's) into a LogBook."""

    def __init__(self, book: LogBook) -> None:
        super().__init__()
        self.book = book

    def emit(self, record: logging.LogRecord) -> None:
        level = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn"}.get(record.levelno, "error")
        self.book.write(level, record.getMessage(), source=record.name)


class DropHandshakeNoise(logging.Filter):
    """uvicorn logs a socket refused before its handshake (our 401 to a bad token) as an ERROR, and a text
    frame that is not UTF-8 (closed 1007, as it should be) as an ERROR with a traceback; a client's mistake
    is not a server error, and must not let clients flood the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return "returned without completing handshake" not in text and "Invalid UTF-8 sequence received" not in text
