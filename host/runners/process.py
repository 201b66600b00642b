"""Launching one runner process and talking to it; restarting is the supervisor's business.

The runner runs in its own session (so its own process group): a Ctrl-C to the host's terminal does not
reach it, and on restart or stop the whole group is killed, children a handler forked included. Its death
is noticed by its exit (the child watcher waits on the pid; for a runner spawned before the host's event
loop existed, prespawn.py, a pidfd), never by the protocol pipe closing: a forked child that inherited the
pipe would otherwise keep a dead runner looking alive.

Transports (protocol/SPEC.md, "Transports"): `fds` (protocol 1.1, the built-in runners) gives the runner
a private pipe pair named in STEPPE_RPC_FDS and captures its fd 1 and 2 as log lines; `stdio` (protocol
1.0 runners) speaks on the runner's stdin/stdout and captures fd 2 only.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, cast

from .. import __version__, wire
from ..prespawn import PreSpawned, adopt, runner_env
from ..rpc import RequestHandler, RpcConnection
from .output import OutputLines
from .registry import RunnerSpec

LogSink = Callable[[dict[str, Any]], None]
EOF_GRACE = 2.0  # seconds a runner that closed its protocol pipe has to exit before it is killed


class _Process(Protocol):
    """What is used of the OS process: asyncio's SubprocessTransport, or an adopted early spawn."""

    def get_pid(self) -> int: ...

    def get_returncode(self) -> int | None: ...

    def close(self) -> None: ...


class RunnerProcess:
    """A started runner: its OS process, its RPC connection, and its own output drained into the logs."""

    def __init__(self, spec: RunnerSpec, project_root: Path, *, on_request: RequestHandler,
                 on_log: LogSink, max_line: int = 16 * 1024 * 1024) -> None:
        self.spec, self.project_root = spec, project_root
        self._on_request, self._on_log, self._max_line = on_request, on_log, max_line
        self.transport: _Process | None = None
        self.os_pid: int | None = None  # kept after exit, to name the runner in messages
        self.rpc: RpcConnection | None = None
        self.info: wire.InitializeResult | None = None
        self._exited: asyncio.Future[None] | None = None
        self._pipes: list[asyncio.BaseTransport] = []
        self._watch: asyncio.Task[None] | None = None
        self.ended: asyncio.Future[str] | None = None  # resolves with the reason, once the process is gone
        self.stderr_tail: deque[str] = deque(maxlen=5)  # to explain a runner that dies at start

    @property
    def pid(self) -> int | None:
        """The running process's pid; None once it has exited (health must not show a dead pid)."""
        return self.os_pid if self.alive else None

    @property
    def alive(self) -> bool:
        return self._exited is not None and not self._exited.done()

    async def start(self, handshake_timeout: float = 30) -> wire.InitializeResult:
        loop = asyncio.get_running_loop()
        self._exited = loop.create_future()
        self.ended = loop.create_future()
        fds = self.spec.transport == "fds"
        env = runner_env(self.spec, self.project_root, self._max_line)
        # made before the spawn: the stdio transport may deliver protocol bytes before the spawn returns
        pipe_writer = _PipeWriter()
        rpc = RpcConnection(pipe_writer, on_request=self._on_request, on_notification=self._notification,
                            on_garbage=self._garbage, limit=self._max_line, max_line=self._max_line)
        lines = OutputLines(self._output_line, max_line=64 * 1024)
        pre = adopt(self.spec.language, list(self.spec.command), env) if fds else None
        if pre is not None:  # spawned before the host imported its modules (prespawn.py)
            from_runner_r, to_runner_w = pre.from_runner, pre.to_runner
            try:
                self.transport = await _AdoptedProcess.connect(loop, pre, self._exited, lines)
            except BaseException:
                pre.kill()
                raise
        else:
            child_ends: tuple[int, ...] = ()
            if fds:
                to_runner_r, to_runner_w = os.pipe()
                from_runner_r, from_runner_w = os.pipe()
                child_ends = (to_runner_r, from_runner_w)
                env["STEPPE_RPC_FDS"] = f"{to_runner_r},{from_runner_w}"
            protocol = _RunnerProtocol(self._exited, rpc, lines, rpc_on_stdout=not fds)
            try:
                self.transport, _ = await loop.subprocess_exec(
                    lambda: protocol, *self.spec.command, cwd=self.project_root, env=env,
                    stdin=asyncio.subprocess.DEVNULL if fds else asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, pass_fds=child_ends,
                    start_new_session=True)  # own session and group: see the module docstring
            except BaseException:
                if fds:
                    os.close(from_runner_r)
                    os.close(to_runner_w)
                raise
            finally:
                for fd in child_ends:
                    os.close(fd)
        assert self.transport is not None
        self.os_pid = self.transport.get_pid()
        if fds:
            read_pipe, _ = await loop.connect_read_pipe(lambda: _RpcInput(rpc), os.fdopen(from_runner_r, "rb",
                                                                                          buffering=0))
            write_pipe, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(to_runner_w, "wb", buffering=0))
            self._pipes = [read_pipe, write_pipe]
            writer: asyncio.WriteTransport = write_pipe
        else:
            subprocess = cast(asyncio.SubprocessTransport, self.transport)
            writer = cast(asyncio.WriteTransport, subprocess.get_pipe_transport(0))  # uvloop's is no subclass
        pipe_writer.attach(writer)
        self.rpc = rpc
        self._watch = loop.create_task(self._run())
        result = await rpc.call("initialize", {"protocolVersion": wire.PROTOCOL_VERSION,
                                               "projectRoot": str(self.project_root),
                                               "host": f"steppe/{__version__}",
                                               "maxLine": self._max_line}, timeout=handshake_timeout)
        self.info = result
        return result  # type: ignore[no-any-return]

    async def _run(self) -> None:
        """Read the protocol until the process is gone; then say why it ended."""
        assert self.rpc and self._exited and self.transport
        reading = asyncio.get_running_loop().create_task(self.rpc.run())
        either: set[asyncio.Future[Any]] = {reading, self._exited}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        broke: str | None = None
        if reading.done() and not self._exited.done():
            why = reading.result()
            if "limit" in why:
                broke = why  # a runner that broke the protocol cannot go on talking
                self.kill()
            else:  # it closed its end of the pipe: it should be exiting
                try:
                    await asyncio.wait_for(asyncio.shield(self._exited), EOF_GRACE)
                except TimeoutError:
                    self.kill()
        await self._exited
        self.kill()  # children it left behind (they may hold the pipes open) go with it
        code = self.transport.get_returncode()
        if broke:
            reason = broke  # the broken protocol is the reason, not the SIGKILL we sent for it
        elif code is not None and code < 0:
            reason = f"runner was killed by signal {signal.Signals(-code).name}"
        elif code:
            reason = f"runner exited with status {code}"
        elif reading.done():
            reason = reading.result()
        else:
            reason = "runner exited"
        self.rpc.close(reason)  # requests in flight fail now, not when a child closes the pipe
        for pipe in self._pipes:
            pipe.close()
        self.transport.close()
        await asyncio.gather(reading, return_exceptions=True)
        if self.ended and not self.ended.done():
            self.ended.set_result(reason)

    def _output_line(self, fd: int, text: str) -> None:
        if fd == 2:
            self.stderr_tail.append(text)
        stdout = fd == 1
        self._on_log({"level": "info" if stdout else "warn", "msg": text,
                      "source": "runner-stdout" if stdout else "runner-stderr", "language": self.spec.language})

    def _notification(self, method: str, params: dict[str, Any]) -> None:
        if method == "log":
            self._on_log(params)

    def _garbage(self, line: bytes, why: str) -> None:
        self._on_log({"level": "warn", "source": "runner-protocol", "language": self.spec.language,
                      "msg": f"ignored a line from the {self.spec.language} runner ({why})",
                      "fields": {"line": line[:500].decode(errors="replace").rstrip()}})

    def kill(self) -> None:
        """SIGKILL the runner's whole process group (it leads it: start_new_session)."""
        if self.os_pid is None:
            return
        try:
            os.killpg(self.os_pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass  # the group is already empty

    async def stop(self, grace: float = 5) -> None:
        """Ask the runner to shut down; kill its group if it does not exit within the grace period."""
        if self._exited is None:
            return
        if self.alive and self.rpc and self.rpc.closed_reason is None:
            try:
                await self.rpc.call("shutdown", {}, timeout=grace)
            except Exception:
                pass
        try:
            await asyncio.wait_for(asyncio.shield(self._exited), grace)
        except TimeoutError:
            pass
        self.kill()
        if self._watch:
            await asyncio.gather(self._watch, return_exceptions=True)


class _RunnerProtocol(asyncio.SubprocessProtocol):
    """The runner's own pipes: fd 1 feeds the RPC reader (stdio transport) or the log (fds), fd 2 the
    log; `process_exited` fires when the process exits, whoever still holds its pipes."""

    def __init__(self, exited: asyncio.Future[None], rpc: RpcConnection, lines: OutputLines, *,
                 rpc_on_stdout: bool) -> None:
        self._exited, self._rpc, self._lines, self._rpc_on_stdout = exited, rpc, lines, rpc_on_stdout

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd == 1 and self._rpc_on_stdout:
            self._rpc.feed_data(data)
        else:
            self._lines.feed(fd, data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 1 and self._rpc_on_stdout:
            self._rpc.feed_eof()
        elif fd in (1, 2):
            self._lines.end(fd)

    def process_exited(self) -> None:
        if not self._exited.done():
            self._exited.set_result(None)


class _AdoptedProcess:
    """A runner spawned early (prespawn.py), in the shape of the SubprocessTransport used otherwise: its fd 1
    and 2 feed the log lines, and its exit is noticed through a pidfd (no child watcher knows the process)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pre: PreSpawned, exited: asyncio.Future[None]) -> None:
        self._loop, self._popen, self._exited = loop, pre.popen, exited
        self._pipes: list[asyncio.BaseTransport] = []
        self._pidfd = os.pidfd_open(pre.popen.pid)
        loop.add_reader(self._pidfd, self._reap)  # readable once the process has exited

    @classmethod
    async def connect(cls, loop: asyncio.AbstractEventLoop, pre: PreSpawned, exited: asyncio.Future[None],
                      lines: OutputLines) -> _AdoptedProcess:
        process = cls(loop, pre, exited)
        for fd, pipe in ((1, pre.stdout), (2, pre.stderr)):
            transport, _ = await loop.connect_read_pipe(lambda fd=fd: _OutputInput(lines, fd), pipe)  # type: ignore[misc]
            process._pipes.append(transport)
        return process

    def _reap(self) -> None:
        if self._popen.poll() is None:
            return
        self._unwatch()
        if not self._exited.done():
            self._exited.set_result(None)

    def _unwatch(self) -> None:
        if self._pidfd >= 0:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = -1

    def get_pid(self) -> int:
        return self._popen.pid

    def get_returncode(self) -> int | None:
        return self._popen.returncode

    def close(self) -> None:
        for pipe in self._pipes:
            pipe.close()
        if self._popen.poll() is None:  # as SubprocessTransport.close: a process still running is killed
            self._popen.kill()
        self._unwatch()


class _OutputInput(asyncio.Protocol):
    """An adopted runner's fd 1 or 2, fed into its log lines."""

    def __init__(self, lines: OutputLines, fd: int) -> None:
        self._lines, self._fd = lines, fd

    def data_received(self, data: bytes) -> None:
        self._lines.feed(self._fd, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lines.end(self._fd)


class _RpcInput(asyncio.Protocol):
    """The runner's protocol output pipe (fds transport), fed straight into the connection."""

    def __init__(self, rpc: RpcConnection) -> None:
        self._rpc = rpc

    def data_received(self, data: bytes) -> None:
        self._rpc.feed_data(data)

    def eof_received(self) -> bool | None:
        self._rpc.feed_eof()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._rpc.feed_eof(exc)


class _PipeWriter:
    """Writes to the runner's protocol input; a runner that died mid-write is noticed by its exit."""

    def __init__(self) -> None:
        self._transport: asyncio.WriteTransport | None = None  # until the runner is spawned

    def attach(self, transport: asyncio.WriteTransport) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            try:
                self._transport.write(data)
            except (ConnectionError, RuntimeError):
                pass
