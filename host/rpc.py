"""One JSON-RPC 2.0 peer over a pair of newline-delimited byte streams (protocol/SPEC.md)."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from . import wire
from .framing import ByteWriter, LineSplitter, LineTooLong, TurnWriter

RequestHandler = Callable[[str, dict[str, Any]], Awaitable[Any]]
NotificationHandler = Callable[[str, dict[str, Any]], None]


class RpcError(Exception):
    """An error answer from the peer, or a local failure of a request (peer gone, line too long)."""

    def __init__(self, code: int, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data or {}

    @property
    def type(self) -> str:
        return str(self.data.get("type") or "Error")

    @property
    def stack(self) -> str:
        return str(self.data.get("stack") or "")


class Refusal(Exception):
    """Raised by a request handler to answer the peer with an error object."""

    def __init__(self, type_: str, message: str, code: int = wire.HOST_REFUSED) -> None:
        super().__init__(message)
        self.error = {"code": code, "message": message, "data": {"type": type_}}


class ConnectionLost(RpcError):
    def __init__(self, reason: str) -> None:
        super().__init__(wire.INTERNAL_ERROR, reason, {"type": "ConnectionLost"})


LINE = orjson.OPT_APPEND_NEWLINE  # the newline is written by orjson: no second copy of each message


def encode(message: dict[str, Any]) -> bytes:
    """One protocol line, newline included: orjson, or the standard library for messages nested deeper than
    orjson's 254 levels (a JSON body up to max_json_depth levels is valid input)."""
    try:
        return orjson.dumps(message, option=LINE)
    except TypeError as e:
        if "ecursion" not in str(e):
            raise
        return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


class RpcConnection:
    """Matches answers to our requests and hands the peer's requests and notifications to callbacks.

    The transport feeds it (`feed_data`, `feed_eof`): every complete line of a chunk is dispatched at once,
    in order, in the transport's callback. Nothing awaits a request handler there: each incoming request
    runs as its own task, so a slow `state.get` cannot hold up an `invoke` answer behind it. Messages sent
    in one loop turn leave in at most two writes (framing.TurnWriter).
    """

    def __init__(self, writer: ByteWriter, *, on_request: RequestHandler, on_notification: NotificationHandler,
                 on_garbage: Callable[[bytes, str], None], limit: int, max_line: int | None = None) -> None:
        self._loop = asyncio.get_running_loop()  # cached: each get_running_loop() costs a getpid()
        self._writer = TurnWriter(writer, self._loop)
        self._lines = LineSplitter(self._dispatch, limit)
        self._limit = limit  # the longest line we accept from the peer
        self._max_line = max_line  # the peer's line limit: a longer message is refused here, never sent
        self._on_request, self._on_notification, self._on_garbage = on_request, on_notification, on_garbage
        self._ids = itertools.count(1)
        self._pending: dict[wire.Id, asyncio.Future[Any]] = {}
        self._wakers: dict[wire.Id, asyncio.Future[None]] = {}  # woken with the answer (wake_on_answer)
        self._ended: asyncio.Future[str] = self._loop.create_future()  # why reading stopped
        self.closed_reason: str | None = None

    # --- sending
    def request(self, method: str, params: dict[str, Any]) -> tuple[int, asyncio.Future[Any]]:
        """Send a request; the future resolves to its result or raises RpcError."""
        rid = next(self._ids)
        fut: asyncio.Future[Any] = self._loop.create_future()
        if self.closed_reason is not None:
            fut.set_exception(ConnectionLost(self.closed_reason))
            return rid, fut
        line = encode({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        if self._max_line is not None and len(line) > self._max_line:
            fut.set_exception(RpcError(wire.HOST_REFUSED, f"the {method} message is {len(line)} bytes, over the "
                                       f"runner's {self._max_line}-byte line limit", {"type": "PayloadTooLarge"}))
            return rid, fut
        self._pending[rid] = fut
        self._writer.write(line)
        return rid, fut

    async def call(self, method: str, params: dict[str, Any], timeout: float | None = None) -> Any:
        rid, fut = self.request(method, params)
        try:
            if timeout is None:
                return await fut  # wait_for(fut, None) is the same, at the cost of a coroutine and a lookup
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._pending.pop(rid, None)

    def forget(self, rid: wire.Id) -> None:
        self._pending.pop(rid, None)
        self._wakers.pop(rid, None)

    def wake_on_answer(self, rid: wire.Id, waiter: asyncio.Future[None]) -> None:
        """Set `waiter`'s result (None) as soon as request `rid` is settled, in the same callback (a done
        callback on the request's future runs a loop turn later, so its waiting task would wake a turn late);
        at once if it is settled already."""
        if rid in self._pending:
            self._wakers[rid] = waiter
        elif not waiter.done():
            waiter.set_result(None)

    def notify(self, method: str, params: dict[str, Any]) -> None:
        if self.closed_reason is None:
            self._writer.write(orjson.dumps({"jsonrpc": "2.0", "method": method, "params": params}, option=LINE))

    def _answer(self, rid: wire.Id, result: Any = None, error: dict[str, Any] | None = None) -> None:
        if self.closed_reason is not None:
            return
        msg: dict[str, Any] = {"jsonrpc": "2.0", "id": rid}
        if error is None:
            msg["result"] = result
        else:
            msg["error"] = error
        try:
            data = orjson.dumps(msg, option=LINE)
        except TypeError as e:
            data = orjson.dumps({"jsonrpc": "2.0", "id": rid, "error": {
                "code": wire.INTERNAL_ERROR, "message": f"unencodable result: {e}", "data": {"type": "TypeError"}}},
                option=LINE)
        if self._max_line is not None and len(data) > self._max_line:  # len(data) counts the newline
            data = orjson.dumps({"jsonrpc": "2.0", "id": rid, "error": {
                "code": wire.HOST_REFUSED, "message": f"the answer is {len(data) - 1} bytes, over the runner's "
                f"{self._max_line}-byte line limit", "data": {"type": "PayloadTooLarge"}}}, option=LINE)
        self._writer.write(data)

    # --- receiving
    def feed_data(self, data: bytes) -> None:
        """A chunk from the peer: dispatch its complete lines now, keep the unfinished last one."""
        if self._ended.done():
            return
        try:
            self._lines.feed(data)
        except LineTooLong:
            self._end(f"runner sent a protocol line over the {self._limit}-byte limit")
        except BaseException as e:  # a host bug in a callback: end reading, as an exception from run()
            self.close(f"host error reading the runner: {e!r}")
            self._ended.set_exception(e)
            raise

    def feed_eof(self, error: Exception | None = None) -> None:
        """The peer closed its end (or the pipe failed with `error`)."""
        if self._ended.done():
            return
        if error is not None:
            self._end(f"runner connection failed: {error}")
            return
        try:
            self._lines.finish()
        finally:
            self._end("runner closed its stdout")

    def _end(self, reason: str) -> None:
        self.close(reason)
        if not self._ended.done():
            self._ended.set_result(reason)

    async def run(self) -> str:
        """Wait until EOF or a protocol violation ends reading; return why (close() does not end it)."""
        return await asyncio.shield(self._ended)

    def close(self, reason: str) -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
        pending, self._pending = self._pending, {}
        wakers, self._wakers = self._wakers, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(ConnectionLost(reason))
        for waiter in wakers.values():
            if not waiter.done():
                waiter.set_result(None)

    def _dispatch(self, line: bytes) -> None:
        try:
            msg = orjson.loads(line)
        except orjson.JSONDecodeError as e:
            if line.strip() and not self._unkeepable(line, str(e)):
                self._on_garbage(line, "not JSON")
            return
        if not isinstance(msg, dict):
            self._on_garbage(line, "not a JSON object")
            return
        method = msg.get("method")
        if method is None:
            rid = msg.get("id")
            fut = self._pending.pop(rid, None) if isinstance(rid, (int, float, str)) else None  # type: ignore[arg-type]
            if fut is None:
                self._on_garbage(line, "answer to an unknown request id")
                return
            if not fut.done():
                if (err := msg.get("error")) is not None:
                    fut.set_exception(_error_from(err))
                else:
                    fut.set_result(msg.get("result"))
            if self._wakers and (waiter := self._wakers.pop(rid, None)) is not None and not waiter.done():  # type: ignore[arg-type]
                waiter.set_result(None)
            return
        params = msg.get("params")
        params = params if isinstance(params, dict) else {}
        if "id" not in msg:
            self._on_notification(str(method), params)
        elif method == "ping":
            self._answer(msg["id"], "pong")
        else:
            # the handler's awaitable is made now, in arrival order, so it sees the state of things
            # (e.g. which invocations are open) as of this message, not as of when its task first runs
            self._loop.create_task(self._serve(msg["id"], self._on_request(str(method), params)))

    def _unkeepable(self, line: bytes, why: str) -> bool:
        """A request or an answer that is JSON, but not JSON the host reads (a lone surrogate, a number too
        large for a double: orjson refuses both): it fails now, with the reason, instead of waiting out its
        timeout. False when the line is no such message (it is then garbage, as before)."""
        try:  # the standard library reads both; long integers stay text (int() refuses past 4,300 digits)
            msg = json.loads(line, parse_int=lambda text: int(text) if len(text) < 30 else text)
        except ValueError:  # not JSON at all (a user's to_json wrote '{{'): the envelope's start may still say
            if (start := _ENVELOPE.match(line)) is None:
                return False
            msg = {"id": orjson.loads(start[1]), start[2].decode(): start[3] and start[3].decode()}
        rid = msg.get("id") if isinstance(msg, dict) else None
        if not isinstance(rid, (int, str)) or isinstance(rid, bool):
            return False
        reason = f"could not be read by the host ({why})"
        if "method" in msg:  # the runner's call: answered, so the handler that made it hears why
            call = msg["method"] if isinstance(msg["method"], str) else "a call"
            self._answer(rid, error={"code": wire.INVALID_PARAMS, "message": f"{call} {reason}",
                                     "data": {"type": "InvalidParams"}})
        elif (fut := self._pending.pop(rid, None)) is not None:
            if not fut.done():
                fut.set_exception(RpcError(wire.INTERNAL_ERROR, f"the runner's answer {reason}",
                                           {"type": "UnreadableAnswer"}))
            if self._wakers and (waiter := self._wakers.pop(rid, None)) is not None and not waiter.done():
                waiter.set_result(None)
        else:
            return False
        self._on_garbage(line, f"a message that {reason}")
        return True

    async def _serve(self, rid: wire.Id, pending: Awaitable[Any]) -> None:
        try:
            result = await pending
        except Refusal as e:
            self._answer(rid, error=e.error)
        except Exception as e:  # a host bug must answer the handler, not hang it
            self._answer(rid, error={"code": wire.INTERNAL_ERROR, "message": f"host error: {e}",
                                     "data": {"type": type(e).__name__}})
        else:
            self._answer(rid, result)


# how the runners start a message: {"jsonrpc":"2.0","id":ID,"method"|"result"|"error": ...
_ENVELOPE = re.compile(rb'\s*\{\s*"jsonrpc"\s*:\s*"2\.0"\s*,\s*"id"\s*:\s*(-?\d{1,18}|"[^"\\]{0,200}")\s*,'
                       rb'\s*"(method|result|error)"(?:\s*:\s*"([\w.]{1,100})")?')


def _error_from(err: Any) -> RpcError:
    """An RpcError from whatever a peer put in `error`, however malformed (the answer still settles)."""
    if not isinstance(err, dict):
        return RpcError(wire.INTERNAL_ERROR, str(err), {"type": "MalformedError"})
    code, data = err.get("code"), err.get("data")
    return RpcError(code if isinstance(code, int) and not isinstance(code, bool) else wire.INTERNAL_ERROR,
                    str(err.get("message", "")), data if isinstance(data, dict) else None)
