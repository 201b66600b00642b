"""Launching one runner process and talking to it; restarting is the supervisor's business."""

from __future__ import annotations

import asyncio
import os
import signal
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import __version__, wire
from ..rpc import RequestHandler, RpcConnection
from .registry import RunnerSpec

LogSink = Callable[[dict[str, Any]], None]


class RunnerProcess:
    """A started runner: its OS process, its RPC connection, and its stderr drained into the logs."""

    def __init__(self, spec: RunnerSpec, project_root: Path, *, on_request: RequestHandler,
                 on_log: LogSink, max_line: int = 16 * 1024 * 1024) -> None:
        self.spec, self.project_root = spec, project_root
        self._on_request, self._on_log, self._max_line = on_request, on_log, max_line
        self.proc: asyncio.subprocess.Process | None = None
        self.rpc: RpcConnection | None = None
        self.info: wire.InitializeResult | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self.ended: asyncio.Future[str] | None = None  # resolves with the reason the connection ended
        self.stderr_tail: deque[str] = deque(maxlen=5)  # to explain a runner that dies at start

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    async def start(self, handshake_timeout: float = 30) -> wire.InitializeResult:
        env = {**os.environ, "STEPPE_PROJECT_ROOT": str(self.project_root), **self.spec.env}
        self.proc = await asyncio.create_subprocess_exec(
            *self.spec.command, cwd=self.project_root, env=env, limit=self._max_line,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True)  # a Ctrl-C to the host's terminal must not kill runners mid-drain
        assert self.proc.stdin and self.proc.stdout and self.proc.stderr
        self.rpc = RpcConnection(self.proc.stdout, _PipeWriter(self.proc.stdin), on_request=self._on_request,
                                 on_notification=self._notification, on_garbage=self._garbage)
        loop = asyncio.get_running_loop()
        self.ended = loop.create_future()
        self._tasks = [loop.create_task(self._read()), loop.create_task(self._drain_stderr(self.proc.stderr))]
        result = await self.rpc.call("initialize", {"protocolVersion": wire.PROTOCOL_VERSION,
                                                    "projectRoot": str(self.project_root),
                                                    "host": f"steppe/{__version__}"}, timeout=handshake_timeout)
        self.info = result
        return result  # type: ignore[no-any-return]

    async def _read(self) -> None:
        assert self.rpc and self.proc
        reason = await self.rpc.run()
        code: int | None = self.proc.returncode
        killed_for_protocol = False
        if code is None:
            # a runner that broke the protocol (over-long line) or closed its stdout cannot go on talking
            if "limit" in reason:
                killed_for_protocol = True
                self.kill()
            try:
                code = await asyncio.wait_for(self.proc.wait(), 2.0)
            except TimeoutError:
                self.kill()
                code = await self.proc.wait()
        if killed_for_protocol:
            pass  # the broken protocol is the reason, not the SIGKILL we sent for it
        elif code < 0:
            reason = f"runner was killed by signal {signal.Signals(-code).name}"
        elif code:
            reason = f"runner exited with status {code}"
        if self.ended and not self.ended.done():
            self.ended.set_result(reason)

    async def _drain_stderr(self, stream: asyncio.StreamReader) -> None:
        while True:
            try:
                line = await stream.readline()
            except ValueError:  # an over-long stderr line: keep draining
                continue
            if not line:
                return
            text = line.decode(errors="replace").rstrip()
            self.stderr_tail.append(text)
            self._on_log({"level": "warn", "msg": text,
                          "source": "runner-stderr", "language": self.spec.language})

    def _notification(self, method: str, params: dict[str, Any]) -> None:
        if method == "log":
            self._on_log(params)

    def _garbage(self, line: bytes, why: str) -> None:
        self._on_log({"level": "warn", "source": "runner-protocol", "language": self.spec.language,
                      "msg": f"ignored a line from the {self.spec.language} runner ({why})",
                      "fields": {"line": line[:500].decode(errors="replace").rstrip()}})

    def kill(self) -> None:
        if self.proc and self.proc.returncode is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass

    async def stop(self, grace: float = 5) -> None:
        """Ask the runner to shut down; kill it if it does not within the grace period."""
        if not self.proc:
            return
        if self.proc.returncode is None and self.rpc and self.rpc.closed_reason is None:
            try:
                await self.rpc.call("shutdown", {}, timeout=grace)
            except Exception:
                pass
        try:
            await asyncio.wait_for(self.proc.wait(), grace)
        except TimeoutError:
            self.kill()
            await self.proc.wait()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class _PipeWriter:
    """Writes to a runner's stdin; a runner that died mid-write is noticed by the reader, not here."""

    def __init__(self, stream: asyncio.StreamWriter) -> None:
        self._stream = stream

    def write(self, data: bytes) -> None:
        if not self._stream.is_closing():
            try:
                self._stream.write(data)
            except (ConnectionError, RuntimeError):
                pass
