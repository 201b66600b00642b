"""An ended invocation as the row the telemetry store keeps, and back.

The row is made when the invocation ends: a tuple of strings, numbers and bytes, which the garbage
collector need not track while it waits for the next batch, and which the writer inserts as it is.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson

from .invocation import Invocation

MAX_PAYLOAD = 16 * 1024  # bytes of an input or operation payload kept per record
# request headers that carry credentials: never written to disk
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"})
COLUMNS = "id, trace_id, step, trigger, language, start, duration, status, attempt, topic, error, flows, body"
Row = tuple[Any, ...]


def bar(items: Any) -> str:
    """`|a|b|`: a set stored so that `LIKE '%|a|%'` finds a member."""
    return "|" + "|".join(sorted(items)) + "|" if items else ""


def split(text: str | None) -> list[str]:
    return sorted({x for x in (text or "").split("|") if x})


def payload(value: Any) -> bytes:
    """A payload as kept, JSON-encoded: itself when small, else a marked, truncated text. Recording never
    fails an invocation: what orjson cannot encode (nesting past its 254 levels) is kept as a note."""
    try:
        raw = orjson.dumps(value, default=str)
    except TypeError as e:
        return orjson.dumps({"unrecorded": f"payload not recorded: {e}"})
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


def encode(inv: Invocation) -> Row:
    ops = b",".join(b'{"op":%s,"at":%.3f,"ms":%.3f,"target":%s,"data":%s}'
                    % (orjson.dumps(op), at, ms, orjson.dumps(target), payload(data))
                    for op, at, ms, target, data in inv.ops)
    body = b'{"stack":%s,"input":%s,"ops":[%s],"opsNotRecorded":%d}' % (
        orjson.dumps(inv.stack), payload(_input(inv)), ops, inv.unrecorded_ops)
    return (inv.id, inv.trace_id, inv.step, inv.trigger, inv.language, inv.started, inv.duration, inv.status,
            inv.attempt, inv.topic, inv.error, bar(inv.flows), body)


def decode(row: Row) -> dict[str, Any]:
    id_, trace, step, trigger, language, start, duration, status, attempt, topic, error, flows, body = row
    extra = orjson.loads(body)
    return {"id": id_, "traceId": trace, "step": step, "trigger": trigger, "language": language, "start": start,
            "duration": duration, "status": status, "attempt": attempt, "topic": topic, "error": error,
            "flows": split(flows), "stack": extra["stack"], "input": extra["input"],
            "opCounts": dict(Counter(o["op"] for o in extra["ops"])), "ops": extra["ops"],
            "opsNotRecorded": extra.get("opsNotRecorded", 0)}
