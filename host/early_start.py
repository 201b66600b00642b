"""The project and its runners, built before the Host: `steppe start` spawns the runners first, then imports
the host's own modules (bus, queues, stores, telemetry: about half of its start-up imports) in a thread while
they start, and the Host adopts the project already loading (serve.py). Only light modules are imported here.

Until the Host exists, a runner's calls into the host wait for it (a step file runs no handler while it loads,
so none is expected); runner logs and supervisor events go to the LogBook straight away."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .health import Health
from .logs import LogBook, LogBookHandler
from .prespawn import discard, export_redact_keys
from .project import Project
from .redact import Redactor
from .runners import InvocationContext, RunnerRegistry
from .runners.limits import check_line_limits
from .runners.supervisor import HostCall, RunnerLog
from .settings import Settings


def prepare_logs(settings: Settings, logs: LogBook) -> None:
    """The host's own `logging` records (`steppe.*`) into the log book; redaction for it, and the same keys
    for the runners (they inherit the host's environment: set before any runner is spawned)."""
    logger = logging.getLogger("steppe")
    logger.handlers[:] = [LogBookHandler(logs)]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logs.redactor = Redactor(settings.redact_keys)
    export_redact_keys(settings)


def runner_log(logs: LogBook) -> RunnerLog:
    """A runner's log record into the log book, named after the step of the invocation it came from."""

    def write(params: dict[str, Any], ctx: InvocationContext | None) -> None:
        step = ctx.step.name if ctx and ctx.step is not None else None
        source = str(params.get("source") or "logger")
        if step is None and "language" in params:
            source = f"{params['language']}-{source}" if not source.startswith(params["language"]) else source
        logs.write(str(params.get("level") or "info"), str(params.get("msg", "")), step=step,
                   trace_id=ctx.trace_id if ctx else None, flows=ctx.flows if ctx else None, source=source,
                   fields=params.get("fields") or None)

    return write


def build_project(settings: Settings, logs: LogBook, health: Health, host_call: HostCall) -> Project:
    registry = RunnerRegistry(python=settings.python_executable(), extra=settings.runners, project_root=settings.root)
    return Project(settings.root, registry, host_call=host_call, on_log=runner_log(logs),
                   on_event=lambda level, msg: logs.write(level, msg, source="supervisor"), auth_file=settings.auth,
                   runner_options={"max_line": settings.max_line, "ping_interval": settings.ping_interval,
                                   "ping_timeout": settings.ping_timeout, "cancel_grace": settings.cancel_grace,
                                   "restart_cap": settings.restart_cap},
                   declarations=settings.steps, health=health)


class EarlyStart:
    """What the Host adopts: its health board, log book, and the project whose files are loading."""

    def __init__(self, settings: Settings) -> None:
        check_line_limits(settings)  # refuse to start (before any runner) when a request could outgrow a line
        self.settings = settings
        self.health = Health()
        self.logs = LogBook(pretty=settings.pretty_logs, level=settings.log_level)
        self.logs.hold()  # released once the Host is built (attach), dropped if it cannot be (abandon)
        prepare_logs(settings, self.logs)
        self._calls: asyncio.Future[HostCall] = asyncio.get_running_loop().create_future()
        self.project = build_project(settings, self.logs, self.health, self._call)
        self.loading: asyncio.Task[None] = asyncio.ensure_future(self.project.load())
        self.loading.add_done_callback(lambda _: discard())  # runners spawned early that no file needed

    def attach(self, calls: HostCall) -> None:
        """The Host exists (its telemetry listening to the log book): runner calls go to its handler from now
        on, and the records kept back meanwhile go out."""
        self.logs.release()
        if not self._calls.done():
            self._calls.set_result(calls)

    async def _call(self, ctx: InvocationContext | None, method: str, params: dict[str, Any]) -> Any:
        calls = await asyncio.shield(self._calls)
        return await calls(ctx, method, params)

    async def abandon(self) -> None:
        """The Host could not be built: let the loading end (no runner is left half-spawned), then stop them."""
        await asyncio.gather(self.loading, return_exceptions=True)
        await self.project.stop(5.0)  # the early spawns nothing adopted went when the loading ended
        self.logs.drop_held()
