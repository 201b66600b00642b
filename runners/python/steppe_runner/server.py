"""The protocol loop: reads host messages, dispatches them, answers; lifecycle of the runner process.

Transport (protocol/SPEC.md): the pipe pair named in STEPPE_RPC_FDS when the host gives one, else
stdin/stdout."""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import gc
import os
import signal
import threading
from typing import Any

from . import __version__, depth, eager
from .capture import Stdio, current_invocation
from .context import Context
from .errors import (
    CANCELLED,
    HANDLER_ERROR,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    LOAD_ERROR,
    METHOD_NOT_FOUND,
    NOT_LOADED,
    UNSUPPORTED_VERSION,
    RequestError,
    error_from,
    plain_error,
)
from .hostcalls import HostCalls
from .invoke import Invocation, Invoker
from .jsonio import LINE_LIMIT, diag, encode_line, error_line, loads, too_large_answer
from .loader import Loader, LoadError

PROTOCOL_VERSION = 1
WORKER_THREADS = 64  # plain `def` handlers often block on I/O: the default pool (cores + 4) is too small
LANGUAGE = "python"  # the registry name, unless the host names another (STEPPE_RUNNER_NAME)


class Runner:
    def __init__(self, loop: asyncio.AbstractEventLoop, stdio: Stdio) -> None:
        self.loop, self.stdio, self.out = loop, stdio, stdio.out
        self.calls = HostCalls(loop, self.out)
        self.invoker = Invoker(loop, self.calls, on_saturated=self._recycle)
        self.loader = Loader(os.getcwd())
        self.active: dict[Any, Invocation] = {}
        self.done: asyncio.Future[None] = loop.create_future()
        self._methods = {
            "invoke": self._invoke, "ping": self._ping, "load": self._load,
            "initialize": self._initialize, "shutdown": self._shutdown,
        }

    # -- incoming lines -------------------------------------------------------------------------------

    def on_line(self, line: bytes) -> None:
        try:
            msg = loads(line)
        except (ValueError, RecursionError):
            if not depth.refuse(line, None, self.out.error, self.calls.resolve):
                diag(f"ignored a line that is not JSON: {line[:200]!r}")
            return
        if type(msg) is not dict:
            diag(f"ignored a line that is not a JSON object: {line[:200]!r}")
            return
        if len(line) > depth.MESSAGE_DEPTH and depth.refuse(line, msg, self.out.error, self.calls.resolve):
            return  # (a line shorter than the depth limit cannot nest deeper than it)
        method = msg.get("method")
        if method is None:
            self.calls.resolve(msg)
            return
        rid = msg.get("id")
        params = msg.get("params")
        if params is None:
            params = {}
        if rid is None:
            if method == "cancel" and isinstance(params, dict):
                self._cancel(params.get("id"))
            return  # other notifications are ignored, as the protocol says
        handler = self._methods.get(method)
        try:
            if handler is None:
                raise RequestError(METHOD_NOT_FOUND, f"unknown method {method!r}", "MethodNotFound")
            if type(params) is not dict:
                raise RequestError(INVALID_PARAMS, "params must be an object")
            handler(rid, params)
        except RequestError as e:
            self.out.error(rid, plain_error(e.code, str(e), e.type))
        except (KeyError, TypeError) as e:
            self.out.error(rid, plain_error(INVALID_PARAMS, f"bad params for {method}: {e!r}", "InvalidParams"))
        except Exception as e:  # a runner bug must not take the runner down
            self.out.error(rid, error_from(INTERNAL_ERROR, e))

    # -- methods --------------------------------------------------------------------------------------

    def _initialize(self, rid: Any, params: dict[str, Any]) -> None:
        if params.get("protocolVersion") != PROTOCOL_VERSION:
            raise RequestError(UNSUPPORTED_VERSION,
                               f"protocol version {params.get('protocolVersion')!r} is not supported; "
                               f"this runner speaks {PROTOCOL_VERSION}", "UnsupportedVersion")
        root = params.get("projectRoot")
        if isinstance(root, str) and root:
            self.loader.set_root(root)
        LINE_LIMIT.set(params.get("maxLine"))
        self.out.result(rid, {"protocolVersion": PROTOCOL_VERSION, "language": LANGUAGE,
                              "runnerVersion": __version__, "pid": os.getpid()})

    def _ping(self, rid: Any, params: dict[str, Any]) -> None:
        self.out.result(rid, "pong")

    def _load(self, rid: Any, params: dict[str, Any]) -> None:
        path, kind = params["path"], params.get("kind", "step")
        if kind not in ("step", "stream", "auth"):
            raise RequestError(INVALID_PARAMS, f"unknown kind {kind!r}")
        self.out.send_held()  # answers to the lines before this one do not wait for the import
        try:
            loaded = self.loader.load(path, kind)
        except SyntaxError as e:
            where = f"{e.filename or path}, line {e.lineno}" if e.lineno else (e.filename or path)
            self.out.error(rid, error_from(LOAD_ERROR, e, f"{e.msg} ({where})"))
            return
        except LoadError as e:  # the file imported but lacks something: no stack worth showing
            self.out.error(rid, plain_error(LOAD_ERROR, str(e), "ConfigError"))
            return
        except BaseException as e:  # noqa: BLE001 - whatever the file does at import, we stay up
            if isinstance(e, (KeyboardInterrupt, asyncio.CancelledError)):
                raise
            self.out.error(rid, error_from(LOAD_ERROR, e))
            return
        gc.freeze()  # what a step file imports lives as long as the runner: keep it out of collections
        try:
            data = encode_line({"jsonrpc": "2.0", "id": rid, "result": loaded.answer()})
        except TypeError as e:
            self.loader.files.pop(path, None)
            self.out.error(rid, error_from(LOAD_ERROR, e, f"the config is not JSON-encodable: {e}"))
            return
        if len(data) > LINE_LIMIT.value:
            self.loader.files.pop(path, None)
            data = too_large_answer(rid, LOAD_ERROR, "the file's config", len(data))
        self.out.write(data)

    def _invoke(self, rid: Any, params: dict[str, Any]) -> None:
        path = params["path"]
        file = self.loader.files.get(path)
        if file is None:
            raise RequestError(NOT_LOADED, f"{path} was never loaded", "NotLoaded")
        inv = Invocation(rid)
        ctx = Context(self.calls, self.out, inv, params.get("traceId"), params.get("flows"), params)
        self.active[rid] = inv
        inv.task = eager.start(self.loop, self._run(inv, file, params.get("trigger"), params.get("input"), ctx))

    async def _run(self, inv: Invocation, file: Any, trigger: Any, data: Any, ctx: Context) -> None:
        rid = inv.rid
        current_invocation.set(rid)
        try:
            result = await self.invoker.run(inv, file, trigger, data, ctx)
            try:
                answer = encode_line({"jsonrpc": "2.0", "id": rid, "result": result})
            except TypeError as e:
                try:
                    answer = depth.encode_deep({"jsonrpc": "2.0", "id": rid, "result": result}, e,
                                               "the handler's result")
                except TypeError as refused:
                    answer = encode_line({"jsonrpc": "2.0", "id": rid, "error": error_from(
                        HANDLER_ERROR, refused, str(refused))})
        except asyncio.CancelledError:
            answer = encode_line({"jsonrpc": "2.0", "id": rid,
                                  "error": plain_error(CANCELLED, "invocation cancelled", "Cancelled")})
        except RequestError as e:
            answer = encode_line({"jsonrpc": "2.0", "id": rid, "error": plain_error(e.code, str(e), e.type)})
        except BaseException as e:  # noqa: BLE001 - sys.exit() in a handler must not end the runner
            answer = _failure(rid, e)
        if len(answer) > LINE_LIMIT.value:  # only this invocation fails, not the runner with all in flight
            answer = too_large_answer(rid, HANDLER_ERROR, "the handler's result", len(answer))
        self.stdio.finish(rid)
        if self.active.get(rid) is inv:  # not answered yet by cancel or shutdown
            del self.active[rid]
            self.out.answer(answer)

    def _cancel(self, rid: Any) -> None:
        inv = self.active.pop(rid, None)
        if inv is None:
            return  # unknown or finished: ignored
        self.out.error(rid, plain_error(CANCELLED, "invocation cancelled", "Cancelled"))
        inv.cancel()

    def _recycle(self, stuck: int) -> None:
        """Too many plain `def` handlers ignored their cancel and still hold threads, which cannot be
        killed: let the other invocations finish (30 s at most), then exit so the host starts afresh."""
        self.out.log(None, "error", f"{stuck} plain def handlers did not return after being cancelled; "
                     "the python runner restarts once its other invocations finish", "runner")
        self.loop.create_task(self._drain_then_stop(30.0))

    async def _drain_then_stop(self, grace: float) -> None:
        deadline = self.loop.time() + grace
        while self.active and self.loop.time() < deadline:
            await asyncio.sleep(0.1)
        self.stop()

    def _shutdown(self, rid: Any, params: dict[str, Any]) -> None:
        self.out.result(rid, None)
        self.stop()

    def stop(self) -> None:
        for rid in list(self.active):
            self._cancel(rid)
        if not self.done.done():
            self.done.set_result(None)


def _failure(rid: Any, exc: BaseException) -> bytes:
    """The answer for a handler that raised `exc`. It always leaves: an error that cannot be described (its
    text, its traceback) is still reported with its type, or the invocation would never be answered."""
    try:
        return error_line(rid, error_from(HANDLER_ERROR, exc))
    except Exception as e:  # noqa: BLE001
        kind = type(exc).__name__
        return error_line(rid, plain_error(HANDLER_ERROR, f"{kind} (describing it failed: {type(e).__name__})", kind))


class RunnerLoop(asyncio.SelectorEventLoop):
    """The runner's event loop, which only the runner stops: a handler's `loop.stop()` raises in that
    handler (or, from a callback, is logged) instead of ending every step of the language with it."""

    _may_stop = False

    def stop(self) -> None:
        if not self._may_stop:
            raise RuntimeError("a handler may not stop the event loop of the Steppe runner (it runs every "
                               "Python step); return, or raise an exception, to end the handler")
        super().stop()

    def finish(self, _: Any = None) -> None:
        self._may_stop = True
        super().stop()


def _rpc_fds() -> tuple[int, int] | None:
    """The protocol pipe pair the host passed (protocol 1.1), or None to speak on stdin/stdout."""
    named = os.environ.pop("STEPPE_RPC_FDS", "")  # popped: a handler's child processes do not have them
    if not named:
        return None
    fd_in, fd_out = (int(part) for part in named.split(","))
    return fd_in, fd_out


class LineProtocol:
    """Splits stdin into lines and hands each to the runner synchronously (no task per message)."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self._buf = bytearray()

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        if buf:
            start = len(buf)
            buf += data
            if buf.find(b"\n", start) < 0:
                if len(buf) > LINE_LIMIT.value:
                    diag(f"dropped a message longer than {LINE_LIMIT.value} bytes")
                    buf.clear()
                return
            data = bytes(buf)
            buf.clear()
        lines = data.split(b"\n")
        tail = lines.pop()
        if tail:
            buf += tail
        on_line = self.runner.on_line
        out = self.runner.out
        out.hold()  # the answers to this chunk's lines (pings, errors, loads) leave in one write
        try:
            for line in lines:
                if len(line) > LINE_LIMIT.value:
                    diag(f"dropped a message longer than {LINE_LIMIT.value} bytes")
                elif line:
                    on_line(line)
        finally:
            out.release()

    def eof_received(self) -> None:
        self.runner.stop()


READ_SIZE = 1 << 16  # under malloc's mmap threshold: asyncio's 256 KiB reads cost 3 syscalls more each


def _read_ready(loop: asyncio.AbstractEventLoop, fd: int, protocol: LineProtocol) -> None:
    try:
        data = os.read(fd, READ_SIZE)
    except (BlockingIOError, InterruptedError):
        return
    except OSError:
        data = b""
    if data:
        protocol.data_received(data)
    else:
        loop.remove_reader(fd)
        protocol.eof_received()


def _read_in_thread(loop: asyncio.AbstractEventLoop, fd: int, protocol: LineProtocol) -> None:
    """For a stdin that is a regular file (manual runs), which epoll refuses."""
    while chunk := os.read(fd, READ_SIZE):
        loop.call_soon_threadsafe(protocol.data_received, chunk)
    loop.call_soon_threadsafe(protocol.eof_received)


async def serve(stdio: Stdio) -> None:
    loop = asyncio.get_running_loop()
    stdio.out.attach(loop)
    loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(WORKER_THREADS, "steppe-handler"))
    runner = Runner(loop, stdio)
    protocol = LineProtocol(runner)
    fd = stdio.proto_in
    try:
        os.set_blocking(fd, False)
        loop.add_reader(fd, _read_ready, loop, fd, protocol)
    except (OSError, ValueError):
        os.set_blocking(fd, True)
        threading.Thread(target=_read_in_thread, args=(loop, fd, protocol), daemon=True).start()
    await runner.done
    await asyncio.sleep(0)  # let cancelled handlers unwind and run their finally blocks


def _restore_user_tunables() -> None:
    """GLIBC_TUNABLES as the user had it, for a handler's child processes: the host started this runner with
    fixed malloc thresholds of its own (host/runners/registry.py), which glibc has read by now."""
    user = os.environ.pop("STEPPE_USER_GLIBC_TUNABLES", None)
    if user:
        os.environ["GLIBC_TUNABLES"] = user
    elif user is not None:
        os.environ.pop("GLIBC_TUNABLES", None)


def main() -> None:
    # Ctrl-C in a dev terminal reaches the whole process group; the host decides when runners stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _restore_user_tunables()
    global LANGUAGE
    LANGUAGE = os.environ.get("STEPPE_RUNNER_NAME") or LANGUAGE
    try:
        LINE_LIMIT.set(int(os.environ.get("STEPPE_MAX_LINE", "")))
    except ValueError:
        pass
    stdio = Stdio(_rpc_fds())
    # not asyncio.run: closing would wait for the worker threads, and a hung `def` handler would keep
    # the runner from ever exiting; os._exit below ends them instead
    # the stdlib loop, not uvloop: the runner reads and writes its pipes itself (add_reader, os.write), so
    # uvloop saved nothing measurable per message, and it imports ssl (~4.5 MB of RSS) at start
    loop = RunnerLoop()
    asyncio.set_event_loop(loop)
    gc.set_threshold(10_000, 20, 20)  # young collections less often: they cost tail latency under load
    try:
        # run_until_complete, but ended by RunnerLoop.finish: its own ending goes through loop.stop()
        served = loop.create_task(serve(stdio))
        served.add_done_callback(loop.finish)
        loop.run_forever()
        served.result()
    except BaseException as e:  # noqa: BLE001
        diag(f"runner crashed: {e!r}")
        os._exit(1)
    try:
        atexit._run_exitfuncs()  # the user's atexit hooks; executor threads are not waited for
    except BaseException:  # noqa: BLE001, S110
        pass
    stdio.finish_all()
    stdio.out.flush()
    os._exit(0)
