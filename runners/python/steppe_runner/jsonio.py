"""JSON encoding and the protocol's output channel.

Every message is encoded once into a single newline-terminated bytes object and written with one
os.write under a lock, so lines from the loop thread and from worker threads never interleave.

Text with lone surrogates (`"\\ud800"`, which Python strings may hold) is not valid UTF-8, and the host
refuses it: whatever the runner sends has them replaced by U+FFFD, a valid pair becoming its character, as
the Node runner sends JavaScript strings. Only the rare message that holds one pays for it: the encoder
refuses it, and only then is the message copied with its text repaired.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Mapping
from typing import Any

_INT_RANGE = range(-(2**63), 2**64)  # the ints orjson encodes as JSON numbers


def well_formed(text: str) -> str:
    """`text` with each lone surrogate replaced by U+FFFD (JavaScript's `toWellFormed`)."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def repaired(obj: Any, depth: int = 0) -> Any:
    """A copy of `obj` whose strings (keys too) are well formed; other values are kept as they are. Data
    nested past the protocol's depth is left alone: the encoder then refuses it for its depth."""
    if isinstance(obj, str):
        return well_formed(obj)
    if depth > 600:
        return obj
    if isinstance(obj, dict):
        return {repaired(k, depth + 1): repaired(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [repaired(v, depth + 1) for v in obj]
    return obj


def _int_text(n: int) -> str:
    try:
        return str(n)
    except ValueError:  # past sys.get_int_max_str_digits()
        digits = int(n.bit_length() * 0.30102999566398120) + 1
        if 10 ** (digits - 1) > abs(n):
            digits -= 1
        return f"<an int too large to print: {digits} digits>"


def safe_repr(value: Any) -> str:
    """repr() for a log, which must never fail: a value whose repr raises is named by its type."""
    if isinstance(value, int) and not isinstance(value, bool):
        return _int_text(value)
    try:
        text = repr(value)
        if not isinstance(text, str):
            raise TypeError("__repr__ returned a non-string")
    except Exception as e:  # noqa: BLE001 - user objects may raise anything
        return f"<{type(value).__name__} that cannot be shown: its repr() raised {type(e).__name__}>"
    return well_formed(text)


def safe_str(value: Any) -> str:
    """str() that never fails (a log message, an exception's text)."""
    try:
        text = str(value)
        if isinstance(text, str):
            return text
    except Exception:  # noqa: BLE001, S110 - __str__ may raise, or return a non-string (TypeError)
        pass
    return safe_repr(value)


def loggable(value: Any, seen: frozenset[int] = frozenset(), depth: int = 0) -> Any:
    """A log field JSON can carry, for fields the encoder refused: text repaired, ints past 64 bits as their
    digits (as Node logs a BigInt), keys as text, a structure inside itself as "[Circular]"; anything else
    is left to the encoder's default (orjson's own types, else repr)."""
    if isinstance(value, str):
        return well_formed(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return value if value in _INT_RANGE else _int_text(value)
    if isinstance(value, (Mapping, list, tuple)):
        if id(value) in seen:
            return "[Circular]"
        if depth >= 100:
            return "[nested too deeply]"
        inner = seen | {id(value)}
        if isinstance(value, Mapping):
            return {(well_formed(k) if isinstance(k, str) else safe_str(k)): loggable(v, inner, depth + 1)
                    for k, v in value.items()}
        return [loggable(v, inner, depth + 1) for v in value]
    return value


try:
    import orjson

    _FAST = orjson.OPT_APPEND_NEWLINE
    # int keys ({200: ...}) are fine for json.dumps, so accept them too; the option costs ~2x, so it is
    # only tried after the fast path failed
    _STRICT = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS
    _SURROGATES = "surrogates not allowed"  # orjson's TypeError for text with lone surrogates

    def encode_line(obj: Any) -> bytes:
        """Encode one message; TypeError if something in it is not JSON."""
        try:
            return orjson.dumps(obj, option=_FAST)
        except TypeError:
            pass
        try:
            return orjson.dumps(obj, option=_STRICT)
        except TypeError as e:
            if _SURROGATES not in str(e):
                raise
        # the rare path: lone surrogates, repaired (the try blocks above cost nothing when nothing fails)
        return orjson.dumps(repaired(obj), option=_STRICT)

    def encode_line_lenient(obj: Any) -> bytes:
        """Encode, turning unknown objects into their repr (for logs and errors, which must never fail)."""
        try:
            return orjson.dumps(obj, default=safe_repr, option=_STRICT)
        except TypeError as e:
            if _SURROGATES not in str(e):
                raise
        return orjson.dumps(repaired(obj), default=safe_repr, option=_STRICT)

    loads = orjson.loads
except ImportError:  # plain stdlib interpreter
    import dataclasses
    import datetime
    import enum
    import json
    import uuid

    def _like_orjson(o: Any) -> Any:
        # mirror what orjson accepts natively so steps behave the same with or without it
        if isinstance(o, (datetime.datetime, datetime.date, datetime.time)):
            return o.isoformat()
        if isinstance(o, uuid.UUID):
            return str(o)
        if isinstance(o, enum.Enum):
            return o.value
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return dataclasses.asdict(o)
        raise TypeError(f"Type is not JSON serializable: {type(o).__name__}")

    def _lenient(o: Any) -> Any:
        try:
            return _like_orjson(o)
        except TypeError:
            return safe_repr(o)

    _strict_enc = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                                   default=_like_orjson)
    _lenient_enc = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_lenient)

    def _utf8(text: str) -> bytes:
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: only inside the JSON text's strings, repaired there
            return well_formed(text).encode("utf-8")

    def encode_line(obj: Any) -> bytes:
        try:
            return _utf8(_strict_enc.encode(obj) + "\n")
        except ValueError as e:  # NaN, circular reference: not JSON either
            raise TypeError(str(e)) from None

    def encode_line_lenient(obj: Any) -> bytes:
        try:
            return _utf8(_lenient_enc.encode(obj) + "\n")
        except (ValueError, RecursionError) as e:  # an int too long to print, a cycle
            raise TypeError(f"{type(e).__name__}: {e}") from None

    loads = json.loads  # type: ignore[assignment]


class LineLimit:
    """The longest line either side may send (STEPPE_MAX_LINE, or maxLine in initialize). The host reads
    the runner's lines with the same limit and restarts a runner that sends a longer one, so nothing this
    runner writes may be longer: a handler's oversized call, result or log record fails or is cut alone."""

    value = 64 * 1024 * 1024  # until the host says

    def set(self, value: Any) -> None:
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            self.value = value

    def exceeded(self, what: str, size: int, verb: str = "is") -> str:
        """Why a message of `size` bytes (its newline included) cannot be sent."""
        return f"{what} {verb} {size} bytes, over the protocol's {self.value}-byte line limit (max_line)"


LINE_LIMIT = LineLimit()
CUT_AT = 4096  # characters of an oversized log record's message that are kept


def too_large_answer(rid: Any, code: int, what: str, size: int) -> bytes:
    """The error answer sent instead of an answer too long for one line."""
    return encode_line({"jsonrpc": "2.0", "id": rid, "error": {
        "code": code, "message": LINE_LIMIT.exceeded(what, size), "data": {"type": "PayloadTooLarge"}}})


def error_line(rid: Any, error: dict[str, Any]) -> bytes:
    """An error answer; one too long for a line (a handler raised with megabytes in its message) keeps
    its type with its message and stack cut."""
    data = encode_line_lenient({"jsonrpc": "2.0", "id": rid, "error": error})
    if len(data) <= LINE_LIMIT.value:
        return data
    note = f"… (cut: {LINE_LIMIT.exceeded('the error', len(data))})"
    extra = error.get("data") if isinstance(error.get("data"), dict) else {}
    cut = {"code": error.get("code", -32000), "message": str(error.get("message", ""))[:CUT_AT] + note,
           "data": {"type": str(extra.get("type", "Error"))[:CUT_AT], "stack": str(extra.get("stack", ""))[:CUT_AT]}}
    return encode_line_lenient({"jsonrpc": "2.0", "id": rid, "error": cut})


class Output:
    """The private protocol stdout (a dup of the original fd 1).

    `write` sends at once, except while the input loop holds the output (`hold`/`release`, around each
    chunk read from the host): then it is gathered, and the answers to all the lines of a chunk leave in
    one os.write when the chunk is done. `queue` (event loop thread only) gathers the answers and requests
    produced in one loop iteration into a single os.write, which is what keeps the invoke rate high under
    load. Either way bytes leave in the order they were produced.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.closed = False
        self._lock = threading.Lock()
        # gathered lines are copied into one buffer, not kept as a list: each orjson result is a block of
        # its own in the C heap (allocated at 1 KiB, then shrunk), and a thousand of them kept alive per
        # chunk made glibc trim and regrow the heap, a page fault per message
        self._queued = bytearray()
        self._holding = False
        self._flush_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def write(self, data: bytes) -> None:
        with self._lock:
            if self._holding:
                self._queued += data
                return
            if self._queued:
                self._queued += data
                self._send_queued()
                return
            self._send(data)

    def hold(self) -> None:
        """Gather writes until `release` (event loop thread; never across an await)."""
        self._holding = True

    def release(self) -> None:
        with self._lock:
            self._holding = False
            self._send_queued()

    def send_held(self) -> None:
        """Send what is gathered so far and go on holding (before slow work, such as importing a file)."""
        with self._lock:
            self._send_queued()

    def queue(self, data: bytes) -> None:
        with self._lock:
            self._queued += data
            if self._flush_scheduled:
                return
            self._flush_scheduled = True
        if self._loop is None:
            self.flush()
        else:
            self._loop.call_soon(self.flush)

    def answer(self, data: bytes) -> None:
        """An invocation's answer (event loop thread): in the write of the chunk being read when it was
        produced right away, else in this loop turn's write."""
        if self._holding:
            self.write(data)
        else:
            self.queue(data)

    def flush(self) -> None:
        with self._lock:
            self._flush_scheduled = False
            if not self._holding:
                self._send_queued()

    def _send_queued(self) -> None:
        if self._queued:
            data, self._queued = self._queued, bytearray()
            self._send(data)

    def _send(self, data: bytes | bytearray) -> None:
        if self.closed:
            return
        try:
            n = os.write(self.fd, data)
            if n < len(data):
                view = memoryview(data)
                while n < len(view):
                    n += os.write(self.fd, view[n:])
        except OSError:
            # the host is gone; stdin EOF will end the runner, until then drop output
            self.closed = True

    def result(self, rid: Any, result: Any) -> None:
        self.write(encode_line({"jsonrpc": "2.0", "id": rid, "result": result}))

    def error(self, rid: Any, error: dict[str, Any]) -> None:
        self.write(error_line(rid, error))

    def log(self, invocation: Any, level: str, msg: str, source: str,
            fields: dict[str, Any] | None = None) -> None:
        """Send a log record; never raises: what cannot be encoded degrades to a readable form."""
        params = {"invocation": invocation, "level": level, "msg": msg, "fields": fields or {},
                  "source": source}
        try:
            data = encode_line_lenient({"jsonrpc": "2.0", "method": "log", "params": params})
        except (TypeError, ValueError, RecursionError):
            # an int past 64 bits, keys that are not text, a structure inside itself: the record keeps
            # every field, each in a form JSON carries (the rare path; the try costs nothing otherwise)
            params["msg"] = well_formed(msg) if isinstance(msg, str) else safe_str(msg)
            try:
                params["fields"] = loggable(fields or {})
                data = encode_line_lenient({"jsonrpc": "2.0", "method": "log", "params": params})
            except Exception:  # noqa: BLE001 - last resort: each field as its repr
                try:
                    params["fields"] = {safe_str(k): safe_repr(v) for k, v in (fields or {}).items()}
                except Exception as e:  # noqa: BLE001
                    params["fields"] = {"unreadable": f"the fields could not be read: {type(e).__name__}"}
                data = encode_line_lenient({"jsonrpc": "2.0", "method": "log", "params": params})
        if len(data) > LINE_LIMIT.value:  # cut, never dropped: the record says what it was
            params["msg"] = params["msg"][:CUT_AT] + "…"
            params["fields"] = {"truncated": LINE_LIMIT.exceeded("the record", len(data), "was")}
            data = encode_line_lenient({"jsonrpc": "2.0", "method": "log", "params": params})
        self.write(data)


def diag(text: str) -> None:
    """The runner's own diagnostics go to the real stderr, which the host keeps as free text."""
    try:
        os.write(2, ("steppe python runner: " + text + "\n").encode("utf-8", "replace"))
    except OSError:
        pass
