"""Keeping one language's runner up: start, reload its files after a restart, ping, restart with backoff."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import wire
from ..rpc import ConnectionLost, RpcError
from .process import RunnerProcess
from .registry import RunnerSpec


class RunnerUnavailable(Exception):
    """The runner cannot take work: it is missing on this machine, or crash-looping."""


class InvocationTimeout(Exception):
    pass


@dataclass
class InvocationContext:
    """What a handler's calls back into the host need to know about the invocation that made them."""

    step: Any  # steppe.steps.Step, kept loose to avoid an import cycle
    trace_id: str
    flows: list[str]
    started: float = field(default_factory=time.monotonic)


HostCall = Callable[[InvocationContext | None, str, dict[str, Any]], Awaitable[Any]]
# A runner's log record, with the invocation it came from when it names one.
RunnerLog = Callable[[dict[str, Any], InvocationContext | None], None]


class RunnerSupervisor:
    CRASH_WINDOW, CRASH_LIMIT = 60.0, 5

    def __init__(self, spec: RunnerSpec, project_root: Path, *, host_call: HostCall, on_log: RunnerLog,
                 on_event: Callable[[str, str], None] | None = None,
                 on_unhealthy: Callable[[str, str], None] | None = None,
                 ping_interval: float = 5.0, ping_timeout: float = 10.0, max_line: int = 16 * 1024 * 1024,
                 cancel_grace: float = 2.0) -> None:
        self.spec, self.project_root = spec, project_root
        self._host_call, self._on_log = host_call, on_log
        self._on_event = on_event or (lambda level, msg: None)
        self._on_unhealthy = on_unhealthy or (lambda language, reason: None)
        self._ping_interval, self._ping_timeout = ping_interval, ping_timeout
        self._max_line, self._cancel_grace = max_line, cancel_grace
        self.files: dict[str, wire.LoadKind] = {}  # loaded into every incarnation of the runner
        self.process: RunnerProcess | None = None
        self.invocations: dict[wire.Id, InvocationContext] = {}
        self._ready = asyncio.Event()
        self._crashes: list[float] = []
        self.unhealthy: str | None = spec.unavailable
        self.restarts = 0
        self._stopping = False
        self._deliberate = False  # the next exit is a restart we asked for, not a crash
        self._watch: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()

    @property
    def language(self) -> str:
        return self.spec.language

    async def start(self) -> None:
        if self.unhealthy:
            raise RunnerUnavailable(self.unhealthy)
        await self._spawn()
        self._watch = asyncio.get_running_loop().create_task(self._supervise())

    async def _spawn(self) -> None:
        self.process = RunnerProcess(self.spec, self.project_root, on_request=self._serve,
                                     on_log=self._log, max_line=self._max_line)
        try:
            await self.process.start()
        except (TimeoutError, OSError, RpcError) as e:
            self.process.kill()
            await asyncio.sleep(0.05)  # let its last stderr lines arrive: they usually say why
            said = " | ".join(self.process.stderr_tail)
            raise RunnerUnavailable(f"{self.language} runner failed to start: {e or type(e).__name__}"
                                    + (f" ({said})" if said else "")) from e
        for path, kind in self.files.items():  # a restarted runner has forgotten what was loaded
            await self._load_into(self.process, path, kind)
        self._ready.set()

    def _log(self, params: dict[str, Any]) -> None:
        self._on_log(params, self.invocations.get(params.get("invocation")))  # type: ignore[arg-type]

    def _serve(self, method: str, params: dict[str, Any]) -> Awaitable[Any]:
        return self._host_call(self.invocations.get(params.get("invocation")), method, params)  # type: ignore[arg-type]

    async def _supervise(self) -> None:
        while not self._stopping:
            assert self.process and self.process.ended
            ping = asyncio.get_running_loop().create_task(self._ping_loop(self.process))
            reason = await self.process.ended
            ping.cancel()
            self._ready.clear()
            if self._stopping:
                return
            if self._deliberate:
                self._deliberate = False
                self.invocations.clear()
                try:
                    await self._spawn()
                except RunnerUnavailable as e:
                    self._on_event("error", str(e))
                    self.process.ended.set_result(str(e))  # type: ignore[union-attr]
                continue
            self._on_event("error", f"{self.language} runner (pid {self.process.pid}) died: {reason}")
            self.invocations.clear()
            await self._restart()
            if self.unhealthy:
                return

    async def _restart(self) -> None:
        now = time.monotonic()
        self._crashes = [t for t in self._crashes if now - t < self.CRASH_WINDOW] + [now]
        if len(self._crashes) >= self.CRASH_LIMIT:
            self.unhealthy = (f"{self.language} runner crashed {len(self._crashes)} times in "
                              f"{self.CRASH_WINDOW:.0f}s; not restarting (see its logs)")
            self._on_event("error", self.unhealthy)
            self._on_unhealthy(self.language, self.unhealthy)
            self._ready.set()  # wake waiters so they fail fast instead of hanging
            return
        await asyncio.sleep(min(0.05 * 2 ** (len(self._crashes) - 1), 5.0))
        try:
            await self._spawn()
            self.restarts += 1
            self._on_event("info", f"{self.language} runner restarted (pid {self.process and self.process.pid})")
        except RunnerUnavailable as e:
            self._on_event("error", str(e))
            assert self.process
            if self.process.ended and not self.process.ended.done():
                self.process.ended.set_result(str(e))

    async def _ping_loop(self, process: RunnerProcess) -> None:
        while process.rpc:
            await asyncio.sleep(self._ping_interval)
            try:
                await process.rpc.call("ping", {}, timeout=self._ping_timeout)
            except TimeoutError:
                self._on_event("error", f"{self.language} runner did not answer a ping in "
                               f"{self._ping_timeout}s; killing it")
                process.kill()
                return
            except RpcError:
                return

    async def ready(self) -> RunnerProcess:
        if self.unhealthy:
            raise RunnerUnavailable(self.unhealthy)
        await self._ready.wait()
        if self.unhealthy or not self.process:
            raise RunnerUnavailable(self.unhealthy or f"{self.language} runner is not running")
        return self.process

    async def load(self, path: str, kind: wire.LoadKind = "step") -> wire.LoadResult:
        """Load a file; raises RpcError (code LOAD_ERROR) with the file's error."""
        process = await self.ready()
        result = await self._load_into(process, path, kind)
        self.files[path] = kind
        return result

    async def _load_into(self, process: RunnerProcess, path: str, kind: wire.LoadKind) -> wire.LoadResult:
        assert process.rpc
        try:
            return await process.rpc.call("load", {"path": path, "kind": kind}, timeout=60)  # type: ignore[no-any-return]
        except RpcError as e:
            if e.code == wire.LOAD_ERROR:
                self.files.pop(path, None)
            raise

    def forget(self, path: str) -> None:
        self.files.pop(path, None)

    async def invoke(self, params: wire.InvokeParams, context: InvocationContext,
                     timeout: float | None = None) -> Any:
        """Run a handler; raises RpcError (handler error, runner crash) or InvocationTimeout."""
        process = await self.ready()
        assert process.rpc
        rid, fut = process.rpc.request("invoke", dict(params))
        self.invocations[rid] = context
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except TimeoutError:
            self._cancel_later(process, rid, fut)
            raise InvocationTimeout(f"handler did not finish within {timeout}s") from None
        except asyncio.CancelledError:
            self._cancel_later(process, rid, fut)
            raise
        finally:
            self.invocations.pop(rid, None)

    def _cancel_later(self, process: RunnerProcess, rid: wire.Id, fut: asyncio.Future[Any]) -> None:
        # the caller gets its answer now; making the runner comply (or replacing it) happens behind it
        task = asyncio.get_running_loop().create_task(self._cancel(process, rid, fut))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _cancel(self, process: RunnerProcess, rid: wire.Id, fut: asyncio.Future[Any]) -> None:
        """Ask the runner to cancel; a runner that does not comply within the grace period is killed."""
        assert process.rpc
        process.rpc.notify("cancel", {"id": rid})
        try:
            await asyncio.wait_for(fut, self._cancel_grace)
        except (RpcError, ConnectionLost):
            pass
        except TimeoutError:
            self._on_event("error", f"{self.language} runner ignored a cancel for {self._cancel_grace}s; "
                           "restarting it")
            process.kill()
        except asyncio.CancelledError:
            pass
        finally:
            process.rpc.forget(rid)

    async def restart(self) -> None:
        """Replace the runner with a fresh one that reloads every file (dev reload of a helper module);
        not counted as a crash. Invocations in flight on the old one fail."""
        if not self.process or self.unhealthy:
            return
        self._deliberate = True
        self._ready.clear()
        await self.process.stop(grace=1.0)
        await self._ready.wait()

    async def stop(self, grace: float = 5) -> None:
        self._stopping = True
        if self._watch:
            self._watch.cancel()
        if self.process:
            await self.process.stop(grace)
