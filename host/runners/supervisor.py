"""Keeping one language's runner up: start, reload its files after a restart, ping, restart with backoff."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from .. import wire
from ..health import Health
from ..rpc import ConnectionLost, RpcError
from .deadline import settled
from .process import RunnerProcess
from .registry import RunnerSpec

_ENDED_KEPT = 1000  # ended invocations remembered for late log calls (a few hundred bytes each)


class RunnerUnavailable(Exception):
    """The runner cannot take work: it is missing on this machine, or down and crash-looping.
    `retry_after` (seconds) is set when it is being restarted and may take work again by then."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvocationTimeout(Exception):
    pass


@dataclass
class InvocationContext:
    """What a handler's calls back into the host need to know about the invocation that made them."""

    step: Any  # steppe.steps.Step, kept loose to avoid an import cycle
    trace_id: str
    flows: list[str]
    started: float = field(default_factory=time.monotonic)
    # the Workbench's recording decision for this trace: event.NEW_TRACE (this invocation starts it), True/False once
    # made (inherited from the emitting invocation), None (unknown: the recorder looks it up)
    sampled: Any = None


HostCall = Callable[[InvocationContext | None, str, dict[str, Any]], Awaitable[Any]]
# A runner's log record, with the invocation it came from when it names one.
RunnerLog = Callable[[dict[str, Any], InvocationContext | None], None]


class RunnerSupervisor:
    """Keeps one runner up for good: a runner that dies is restarted after a capped exponential backoff,
    forever. While it is down and crash-looping its calls fail fast (RunnerUnavailable with a
    retry_after), its steps show as unhealthy, and host health says `degraded`, until it is back."""

    CRASH_WINDOW, CRASH_LIMIT = 60.0, 5  # this many deaths within the window is a crash loop, until the
    # runner has stayed up for two ping intervals
    FIRST_DELAY = 0.05  # seconds before the first restart; doubled per recent crash, up to restart_cap

    def __init__(self, spec: RunnerSpec, project_root: Path, *, host_call: HostCall, on_log: RunnerLog,
                 on_event: Callable[[str, str], None] | None = None,
                 on_unhealthy: Callable[[str, str | None], None] | None = None, health: Health | None = None,
                 ping_interval: float = 5.0, ping_timeout: float = 10.0, max_line: int = 16 * 1024 * 1024,
                 cancel_grace: float = 2.0, restart_cap: float = 30.0) -> None:
        self.spec, self.project_root = spec, project_root
        self._host_call, self._on_log = host_call, on_log
        self._on_event = on_event or (lambda level, msg: None)
        self._on_unhealthy = on_unhealthy or (lambda language, reason: None)
        self._health = health
        self._ping_interval, self._ping_timeout = ping_interval, ping_timeout
        self._max_line, self._cancel_grace, self._restart_cap = max_line, cancel_grace, restart_cap
        self.files: dict[str, wire.LoadKind] = {}  # loaded into every incarnation of the runner
        self.process: RunnerProcess | None = None
        self.invocations: dict[wire.Id, InvocationContext] = {}
        # invocations that ended lately: a log call from work the handler left running still names its step
        # and trace (host calls after the end stay refused); the oldest go first
        self._ended: dict[wire.Id, InvocationContext] = {}
        self._ready = asyncio.Event()
        self._changed: asyncio.Future[None] | None = None  # resolved (and replaced) when up/down changes
        self._crashes: list[float] = []
        self.unhealthy: str | None = spec.unavailable  # why its steps cannot run now (shown with them)
        self.down: str | None = None  # why no runner is up right now (between a death and its restart)
        self._next_attempt = 0.0
        self._up_since = 0.0
        self.runner_version: str | None = None
        self.restarts = 0
        self._stopping = False
        self._deliberate = False  # the next exit is a restart we asked for, not a crash
        self._watch: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()

    @property
    def language(self) -> str:
        return self.spec.language

    @property
    def health_key(self) -> str:
        return f"runner.{self.language}"

    async def start(self) -> None:
        if self.spec.unavailable:
            raise RunnerUnavailable(self.spec.unavailable)
        await self._spawn()
        assert self.process
        self._on_event("info", f"{self.language} runner {self.runner_version} started "
                       f"(pid {self.process.os_pid}, {self.spec.transport} transport)")
        self._watch = asyncio.get_running_loop().create_task(self._supervise())

    async def _spawn(self) -> None:
        self.process = process = RunnerProcess(self.spec, self.project_root, on_request=self._serve,
                                               on_log=self._log, max_line=self._max_line)
        try:
            info = await process.start()
            if not isinstance(info, dict) or info.get("language") != self.language:
                said = info.get("language") if isinstance(info, dict) else info
                raise RpcError(wire.INTERNAL_ERROR, f"the runner registered as {self.language!r} answered the "
                               f"handshake as language {said!r}")
        except (TimeoutError, OSError, RpcError) as e:
            process.kill()
            await asyncio.sleep(0.05)  # let its last stderr lines arrive: they usually say why
            said = " | ".join(process.stderr_tail)
            raise RunnerUnavailable(f"{self.language} runner failed to start: {e or type(e).__name__}"
                                    + (f" ({said})" if said else "")) from e
        self.runner_version = str(info.get("runnerVersion") or "?")
        for path, kind in list(self.files.items()):  # a restarted runner has forgotten what was loaded
            try:
                await self._load_into(process, path, kind)
            except RpcError as e:
                if e.code != wire.LOAD_ERROR:  # the runner died or broke while loading: a failed start
                    process.kill()
                    raise RunnerUnavailable(f"{self.language} runner failed to reload its files: {e}") from e
                self._on_event("error", f"{path} no longer loads after the {self.language} runner restarted: "
                               f"{e.message}")
            except TimeoutError as e:
                process.kill()
                raise RunnerUnavailable(f"{self.language} runner did not reload {path} in time") from e
        self._up_since = time.monotonic()
        self._ready.set()
        self._signal()

    def _log(self, params: dict[str, Any]) -> None:
        rid = params.get("invocation")
        self._on_log(params, self.invocations.get(rid) or self._ended.get(rid))  # type: ignore[arg-type]

    def _serve(self, method: str, params: dict[str, Any]) -> Awaitable[Any]:
        return self._host_call(self.invocations.get(params.get("invocation")), method, params)  # type: ignore[arg-type]

    async def _supervise(self) -> None:
        while not self._stopping:
            process = self.process
            assert process and process.ended
            ping = asyncio.get_running_loop().create_task(self._ping_loop(process))
            reason = await process.ended
            ping.cancel()
            self._ready.clear()
            self.invocations.clear()
            if self._stopping:
                return
            if self._deliberate:
                self._deliberate = False
                try:
                    await self._spawn()
                    continue
                except Exception as e:
                    reason = str(e) or type(e).__name__
                    self._on_event("error", reason)
            else:
                self._on_event("error", f"{self.language} runner (pid {process.os_pid}) died: {reason}")
            await self._restart(reason)

    async def _restart(self, reason: str) -> None:
        """Restart after a backoff that doubles per recent crash (capped), until a runner is up."""
        while not self._stopping:
            now = time.monotonic()
            self._crashes = [t for t in self._crashes if now - t < self.CRASH_WINDOW] + [now]
            delay = min(self.FIRST_DELAY * 2 ** (len(self._crashes) - 1), self._restart_cap)
            self.down, self._next_attempt = reason, now + delay
            self._report()
            await asyncio.sleep(delay)
            try:
                await self._spawn()
            except Exception as e:  # whatever went wrong, supervision goes on: it is the next crash
                reason = str(e) or type(e).__name__
                self._on_event("error", reason)
                continue
            self.restarts += 1
            self.down = None
            self._report()
            self._on_event("info", f"{self.language} runner restarted (pid {self.process and self.process.os_pid})")
            return

    def _recent_crashes(self) -> int:
        now = time.monotonic()
        return sum(1 for t in self._crashes if now - t < self.CRASH_WINDOW)

    def _crash_looping(self) -> bool:
        stable = self.down is None and time.monotonic() - self._up_since >= 2 * self._ping_interval
        return not stable and self._recent_crashes() >= self.CRASH_LIMIT

    def _report(self) -> None:
        """Tell host health, and the steps, whether this runner is down or crash-looping, or fine again."""
        crashes = self._recent_crashes()
        looping = self._crash_looping()
        name = f"the {self.language} runner"
        if self.down is not None:
            wait = max(0.0, self._next_attempt - time.monotonic())
            status = (f"{name} is down and crash-looping: it crashed {crashes} times in the last minute; next "
                      f"restart in {wait:.0f}s" if looping else f"{name} is down and being restarted")
        elif looping:
            status = f"{name} is crash-looping: it crashed {crashes} times in the last minute"
        else:
            status = ""
        if self._health is not None:
            self._health.report(self.health_key, "degraded" if status else "ok", status)
        unhealthy = (f"{self.language} runner crashed {crashes} times in {self.CRASH_WINDOW:.0f}s; restarting it "
                     "with backoff (see its logs)") if looping else None
        if unhealthy != self.unhealthy and not self.spec.unavailable:
            self.unhealthy = unhealthy
            self._on_unhealthy(self.language, unhealthy)
        self._signal()

    def _signal(self) -> None:
        """Wake callers waiting in ready(): the runner came up, or went down for a while."""
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)
        self._changed = None

    async def _ping_loop(self, process: RunnerProcess) -> None:
        while process.rpc:
            await asyncio.sleep(self._ping_interval)
            if self.unhealthy and not self.spec.unavailable:
                self._report()  # a crash loop ends once the runner stays up (or its crashes grow old)
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
        """The running process; fails fast while the runner is missing, or down and crash-looping."""
        while True:
            if self.spec.unavailable:
                raise RunnerUnavailable(self.spec.unavailable)
            if self._ready.is_set() and self.process:
                return self.process
            if self.down is not None and self._crash_looping():
                wait = max(1.0, self._next_attempt - time.monotonic())
                raise RunnerUnavailable(self.unhealthy or f"{self.language} runner is down", retry_after=wait)
            if self._stopping:
                raise RunnerUnavailable(f"{self.language} runner is stopping")
            if self._changed is None:
                self._changed = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._changed)

    async def replaced(self, process: RunnerProcess | None) -> None:
        """Once `process` (one that died) has been replaced by a running one; fails as ready() does."""
        while (await self.ready()) is process:
            if self._changed is None:
                self._changed = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._changed)  # woken as the death is reported, then when the new one is up

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
            if not fut.done() and not await settled(fut, timeout, partial(process.rpc.wake_on_answer, rid)):
                self._cancel_later(process, rid, fut)
                raise InvocationTimeout(f"handler did not finish within {timeout}s")
            return fut.result()
        except asyncio.CancelledError:
            self._cancel_later(process, rid, fut)
            raise
        finally:
            ended = self._ended
            ended[rid] = self.invocations.pop(rid, context)
            if len(ended) > _ENDED_KEPT:
                del ended[next(iter(ended))]

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
        if not self.process or self.down is not None or self.spec.unavailable:
            return
        self._deliberate = True
        self._ready.clear()
        await self.process.stop(grace=1.0)
        await self._ready.wait()

    async def stop(self, grace: float = 5) -> None:
        self._stopping = True
        self._signal()
        if self._health is not None:
            self._health.clear(self.health_key)
        if self._watch:
            self._watch.cancel()
        if self.process:
            await self.process.stop(grace)
