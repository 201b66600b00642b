"""Running one invocation: the trigger's call shape, middleware, worker threads and cancellation."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import inspect
import threading
import types
from collections.abc import Callable, Mapping
from typing import Any

from . import dialect
from .capture import current_invocation
from .context import Context, Request
from .errors import INVALID_PARAMS, RequestError
from .hostcalls import HostCalls
from .loader import LoadedFile
from .syncpool import SyncPool


def _aim(thread_id: int, exc: type[BaseException] | None) -> None:
    """Make `exc` fire in a worker thread at its next bytecode (None: drop one still pending).

    ctypes (~0.5 MB of RSS) is imported on the first cancel that reaches a thread; an interpreter without
    it lets such threads run to the end."""
    try:
        import ctypes

        set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
    except (ImportError, AttributeError):
        return
    set_async_exc(ctypes.c_ulong(thread_id), None if exc is None else ctypes.py_object(exc))


class InvocationCancelled(BaseException):
    """Raised inside a plain `def` handler's thread when its invocation is cancelled.

    A BaseException, so a handler's `except Exception` does not swallow it.
    """


class Invocation:
    __slots__ = ("rid", "task", "cancelled", "step", "_blocking", "_threads", "_lock")

    def __init__(self, rid: Any) -> None:
        self.rid = rid
        self.step: Any = None  # the file whose handler runs: the unit of the worker-thread limits
        self.task: asyncio.Task[Any] | None = None
        self.cancelled = False
        self._blocking: set[concurrent.futures.Future[Any]] = set()  # what worker threads wait on
        self._threads: set[int] = set()
        self._lock = threading.Lock()

    def run_sync(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        """Runs in a worker thread, where cancel() can reach it."""
        me = threading.get_ident()
        with self._lock:
            if self.cancelled:
                raise InvocationCancelled()
            self._threads.add(me)
        try:
            return fn(*args)
        finally:
            with self._lock:
                self._threads.discard(me)
                if self.cancelled:
                    # an exception aimed at this thread may still be pending: it must not fire later,
                    # inside the executor or the next handler this thread runs
                    _aim(me, None)

    def wait(self, fut: concurrent.futures.Future[Any]) -> Any:
        """Block a worker thread on `fut` (a host call, an inner layer) in a way cancel() interrupts."""
        with self._lock:
            if self.cancelled:
                fut.cancel()
            self._blocking.add(fut)
        try:
            return fut.result()
        finally:
            with self._lock:
                self._blocking.discard(fut)

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            for tid in self._threads:
                _aim(tid, InvocationCancelled)
            blocking = list(self._blocking)
        for fut in blocking:
            fut.cancel()  # for a run_coroutine_threadsafe future this cancels the task in the loop too
        if self.task is not None:
            self.task.cancel()


def _is_async(fn: Any) -> bool:
    code = getattr(fn, "__code__", None)  # a plain `async def`, told by its code flags alone
    if code is not None and code.co_flags & inspect.CO_COROUTINE:
        return True
    # partials, marked functions, and an object whose __call__ is async count too
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)


class Invoker:
    def __init__(self, loop: asyncio.AbstractEventLoop, calls: HostCalls,
                 on_saturated: Callable[[int], None] | None = None) -> None:
        self.loop, self.calls = loop, calls
        self.pool = SyncPool(loop, on_saturated=on_saturated)

    async def call(self, inv: Invocation, fn: Callable[..., Any], *args: Any) -> Any:
        """Await an async function; run a plain one in a worker thread with the current contextvars."""
        if _is_async(fn):
            return await fn(*args)
        ctx = contextvars.copy_context()
        result = await self.pool.run(inv.step, ctx.run, inv.run_sync, fn, args)
        if type(result) in _GENERATORS:  # a generator function the loader could not tell (a plain wrapper)
            raise TypeError(f"the handler returned {_GENERATORS[type(result)]} instead of running: a function "
                            "that uses `yield` is a generator, whose body never runs when called; return the "
                            "value instead of yielding it")
        if inspect.isawaitable(result):  # a plain function handing back a coroutine
            result = await result
        return result

    async def run(self, inv: Invocation, file: LoadedFile, trigger: str, data: Any, ctx: Context) -> Any:
        inv.step = file.path
        if file.config.get("dialect") == dialect.DIALECT:
            result = await dialect.run(self, inv, _required(file.handler, "handler"), trigger, data, ctx)
            return api_response(result) if trigger == "api" else None
        if trigger == "api":
            return api_response(await self._api(inv, file, Request(data or ()), ctx))
        if trigger == "event":
            await self.call(inv, _required(file.handler, "handler"), data, ctx)
            return None
        if trigger == "cron":
            await self.call(inv, _required(file.handler, "handler"), ctx)
            return None
        if trigger == "canAccess":
            data = data if isinstance(data, Mapping) else {}
            fn = _required(file.can_access, "canAccess")
            return bool(await self.call(inv, fn, data.get("subscription"), data.get("authContext")))
        if trigger == "authenticate":
            return await self.call(inv, _required(file.authenticate, "authenticate"), Request(data or ()))
        raise RequestError(INVALID_PARAMS, f"unknown trigger {trigger!r}")

    def _api(self, inv: Invocation, file: LoadedFile, req: Request, ctx: Context) -> Any:
        handler = _required(file.handler, "handler")
        middleware = file.middleware
        if not middleware:
            return self.call(inv, handler, req, ctx)

        def layer(i: int) -> Any:
            if i == len(middleware):
                return self.call(inv, handler, req, ctx)
            return self.call(inv, middleware[i], req, ctx, _Next(self.loop, self.calls, inv, lambda: layer(i + 1)))

        return layer(0)


class _Next:
    """The `next` a middleware receives: awaitable in async middleware, blocking in a plain one."""

    __slots__ = ("_loop", "_calls", "_inv", "_inner")

    def __init__(self, loop: asyncio.AbstractEventLoop, calls: HostCalls, inv: Invocation,
                 inner: Callable[[], Any]) -> None:
        self._loop, self._calls, self._inv, self._inner = loop, calls, inv, inner

    def __call__(self) -> Any:
        if threading.get_ident() == self._calls.loop_thread:
            return self._inner()
        return self._inv.wait(asyncio.run_coroutine_threadsafe(self._in_invocation(), self._loop))

    async def _in_invocation(self) -> Any:
        current_invocation.set(self._inv.rid)  # a task started from a thread has the loop's context
        return await self._inner()


_GENERATORS = {types.GeneratorType: "a generator", types.AsyncGeneratorType: "an async generator"}


def _required(fn: Callable[..., Any] | None, name: str) -> Callable[..., Any]:
    if fn is None:
        raise RequestError(INVALID_PARAMS, f"the file defines no {name}")
    return fn


_RESPONSE_KEYS = frozenset(("status", "body", "headers", "bodyBase64"))


def is_response(resp: Any) -> bool:
    """An HTTP response, not a plain value: a mapping with only status/body/headers/bodyBase64 keys whose
    an int `status` or one of the other keys. `{"status": "processed"}` is a body; the host refuses a
    response whose status is not an int 100-599."""
    if not isinstance(resp, Mapping) or not set(resp) <= _RESPONSE_KEYS:
        return False
    status = resp.get("status")
    if isinstance(status, int) and not isinstance(status, bool):
        return True
    return any(k != "status" for k in resp)


def api_response(resp: Any) -> dict[str, Any]:
    """{status, body, headers} from a response dict or an object with those attributes; any other value
    is the body of a 200 (None: a 204 with no body)."""
    if resp is None:
        return {"status": 204, "headers": {}}
    if type(resp) is dict and resp.keys() <= _RESPONSE_KEYS and type(resp.get("status")) is int:
        body, headers = resp.get("body"), resp.get("headers")  # the common case, without the checks below
        out = {"status": resp["status"], "headers": _headers(headers) if headers else {}}
        if body is None and "bodyBase64" in resp:
            out["bodyBase64"] = resp["bodyBase64"]  # bytes the handler encoded itself: the host decodes them
            return out
        if type(body) in _PLAIN_BODIES:
            out["body"] = body
            return out
        return _with_body(out, body)
    if isinstance(resp, Mapping) and is_response(resp):
        status, body, headers = resp.get("status", 200), resp.get("body"), resp.get("headers")
        if body is None and "bodyBase64" in resp:
            return {"status": status, "headers": _headers(headers) if headers else {}, "bodyBase64": resp["bodyBase64"]}
    elif not isinstance(resp, Mapping) and hasattr(resp, "status"):
        status, body, headers = resp.status, getattr(resp, "body", None), getattr(resp, "headers", None)
    else:
        status, body, headers = 200, resp, None
    # the host decides what a status may be (digits as text pass, 999 or "abc" answer 500), as for every runner
    return _with_body({"status": int(status) if type(status) is int else status,
                       "headers": _headers(headers) if headers else {}}, body)


def _headers(headers: Any) -> Any:
    """A response's headers as a dict of names. What is no mapping (nor a list of pairs, which dict() takes)
    is passed on as it is, for the host to refuse naming what it is ("the handler returned headers as an
    array: expected an object"), as it does for JS and Ruby handlers."""
    if type(headers) is not dict and not isinstance(headers, Mapping) and not hasattr(headers, "keys"):
        pairs = isinstance(headers, (list, tuple)) and all(
            isinstance(p, (list, tuple)) and len(p) == 2 for p in headers)
        if not pairs:
            return headers
    out = dict(headers)
    for name in out:
        if not isinstance(name, str):  # None would be sent as a header called `null`, 1 as `1`
            raise TypeError(f"the handler returned a header name {name!r} ({type(name).__name__}): header names "
                            "are strings")
    return out


_PLAIN_BODIES = frozenset((dict, list, str, int, float, bool, type(None)))


def _with_body(out: dict[str, Any], body: Any) -> dict[str, Any]:
    model_dump = None if isinstance(body, type) else getattr(body, "model_dump", None)
    if callable(model_dump):
        body = model_dump(mode="json")  # a pydantic model instance as body
    if isinstance(body, (bytes, bytearray, memoryview)):
        import base64  # on first use: most steps never answer bytes

        out["bodyBase64"] = base64.b64encode(body).decode("ascii")
    else:
        out["body"] = body
    return out
