"""The JSON nesting limit every Steppe runner enforces: 512 levels for a value (a request body, event
data, a state or stream value, a result), 520 for a whole protocol message (the value plus its
envelope, e.g. `{"params": {"input": {"body": ...}}}`).

Deeper data is refused with an error naming the limit, never a RecursionError: a message from the
host that is too deep is answered with InvalidParams (or, for an answer to a host call, fails that
call in the handler); a value a handler sends that is too deep raises in the handler.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .jsonio import well_formed

MAX_DEPTH = 512
MESSAGE_DEPTH = MAX_DEPTH + 8
TOO_DEEP = f"nested deeper than {MAX_DEPTH} levels (the JSON nesting limit of Steppe runners)"

# the id of a message the decoder refused: only at the top level, where the host writes it
# (`{"jsonrpc":"2.0","id":7,"method":...` or `..."result":...`), never an "id" inside params
_HEAD = re.compile(rb'^\s*\{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"id"\s*:\s*(-?\d+|"(?:[^"\\]|\\.){0,200}")\s*,'
                   rb'\s*"(method|result|error)"')


def exceeds(value: Any, limit: int = MAX_DEPTH) -> bool:
    """True when `value` nests lists/dicts more than `limit` levels; iterative, so any depth is safe."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict):
            children: Any = v.values()
        elif isinstance(v, (list, tuple)):
            children = v
        else:
            continue
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list, tuple)))
    return False


def may_exceed(line: bytes, limit: int = MESSAGE_DEPTH) -> bool:
    """A fast filter: a line with no more brackets than the limit cannot nest deeper than it (nor can a
    line shorter than the limit, which spares counting on most messages)."""
    return len(line) > limit and line.count(b"[") + line.count(b"{") > limit


def refused_head(line: bytes) -> tuple[Any, str] | None:
    """(id, "method" | "result" | "error") of a line that could not be decoded, when its head says."""
    m = _HEAD.match(line)
    if m is None:
        return None
    raw = m.group(1)
    rid: Any = int(raw) if raw[:1] != b'"' else raw[1:-1].decode("utf-8", "replace")
    return rid, m.group(2).decode()


def refuse(line: bytes, msg: Any, answer: Any, fail_call: Any) -> bool:
    """For the decoder, given a line and what it decoded to (None when decoding failed): True when the
    line was too deep and has been dealt with, a request answered with InvalidParams through
    `answer(id, error)`, an answer to a host call turned into an error through `fail_call(message)`."""
    if msg is not None:
        if not (may_exceed(line) and exceeds(msg, MESSAGE_DEPTH)):
            return False
        rid, kind = msg.get("id"), "method" if "method" in msg else "result"
    else:
        head = refused_head(line) if may_exceed(line) else None
        if head is None:
            return False
        rid, kind = head
    if rid is None:
        return True  # a notification: nobody to answer
    error = {"code": -32602, "message": f"message {TOO_DEEP}", "data": {"type": "InvalidParams"}}
    if kind == "method":
        answer(rid, error)
    else:
        fail_call({"jsonrpc": "2.0", "id": rid, "error": {**error, "message": f"the host's answer is {TOO_DEEP}"}})
    return True


def encode_deep(obj: Any, error: TypeError, what: str) -> bytes:
    """The protocol line for `obj` after the fast encoder refused it with `error`.

    orjson stops at 255 levels; data under the limit is encoded by the standard library instead, and
    deeper data raises a TypeError naming the limit (as does anything else the encoder refused)."""
    if "Recursion limit" not in str(error):
        raise TypeError(f"{what} is not JSON-serialisable: {error}") from None
    if exceeds(obj, MESSAGE_DEPTH):
        raise TypeError(f"{what} is not JSON-serialisable: {TOO_DEEP} (or it contains itself)") from None
    try:
        text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as e:
        raise TypeError(f"{what} is not JSON-serialisable: {e}") from None
    try:
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:  # lone surrogates, inside the text's strings: U+FFFD, as encode_line does
        return well_formed(text).encode("utf-8") + b"\n"
