"""Requests a running handler makes back into the host (emit, state.*, streams.*).

A call from the event loop thread returns an asyncio future (await it in `async def` handlers); a call
from any other thread (plain `def` handlers run in workers) blocks that thread and returns the value.
The message is encoded in the caller's thread, so unencodable data raises right at the call.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import threading
from typing import Any

from .depth import encode_deep
from .jsonio import LINE_LIMIT, Output, encode_line


class HostError(Exception):
    """The host refused a handler's call; `type` names the reason (e.g. UndeclaredTopic).

    Each reason gets its own subclass named after it, so an uncaught refusal reports that name as the
    invoke error's type, while `except HostError` still catches them all.
    """

    def __init__(self, message: str, type_: str = "HostError", code: int = -32010,
                 data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.type, self.code, self.data = type_, code, data or {}


class StateConflict(HostError):
    """state.update's `expect` did not match: nothing was changed (the host's StateConflict refusal)."""


_reasons: dict[str, type[HostError]] = {"StateConflict": StateConflict}


def host_error(err: Any) -> HostError:
    if not isinstance(err, dict):
        return HostError(str(err))
    data = err.get("data")
    if not isinstance(data, dict):
        data = {}
    reason = data.get("type")
    if not isinstance(reason, str):
        reason = "HostError"
    cls = HostError
    if reason != "HostError" and reason.isidentifier():
        cls = _reasons.get(reason) or _reasons.setdefault(
            reason, type(reason, (HostError,), {"__module__": HostError.__module__}))
    code = err.get("code")
    return cls(str(err.get("message") or reason), reason, code if isinstance(code, int) else -32010, data)


class HostCalls:
    def __init__(self, loop: asyncio.AbstractEventLoop, out: Output) -> None:
        self.loop, self.out = loop, out
        self.loop_thread = threading.get_ident()
        self.pending: dict[int, Any] = {}
        self._ids = itertools.count(1)

    def call(self, inv: Any, method: str, params: dict[str, Any]) -> Any:
        rid = next(self._ids)
        msg = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}
        try:
            data = encode_line(msg)
        except TypeError as e:
            data = encode_deep(msg, e, f"{method} data")
        if len(data) > LINE_LIMIT.value:  # never sent: the host would restart the runner for it
            raise host_error({"code": -32010, "message": LINE_LIMIT.exceeded(f"the {method} message", len(data)),
                              "data": {"type": "PayloadTooLarge"}})
        if threading.get_ident() == self.loop_thread:
            fut = self.loop.create_future()
            self.pending[rid] = fut
            self.out.queue(data)  # the handler awaits next, which lets the loop flush it
            return fut
        # worker thread: the reader resolves this future from the loop; cancelling the invocation
        # cancels it, which wakes this thread up
        cf: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.pending[rid] = cf
        self.out.write(data)
        return inv.wait(cf)

    def resolve(self, msg: dict[str, Any]) -> None:
        fut = self.pending.pop(msg.get("id"), None)  # type: ignore[arg-type]
        if fut is None or fut.done():  # the caller was cancelled meanwhile
            return
        if "error" in msg:
            fut.set_exception(host_error(msg["error"]))
        else:
            fut.set_result(msg.get("result"))
