"""A minimal host side of protocol v1.1 for tests and the conformance kit: stdlib only.

RunnerClient spawns any runner command, sends requests, answers the runner's own requests with a
callback, and collects `log` notifications and garbage lines. Transport "stdio" (protocol 1.0) speaks on
the runner's stdin/stdout; "fds" (1.1) on a pipe pair named in STEPPE_RPC_FDS, and collects what the
runner writes to its stdout in `stdout`. An optional `tap(direction, message)` sees
every parsed message both ways ("in" from the runner, "out" to it); the conformance kit validates there.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

LIMIT = 64 * 1024 * 1024  # the longest line read from the runner
HostCall = Callable[[str, dict[str, Any]], Awaitable[Any]]
Tap = Callable[[str, dict[str, Any]], None]


class RunnerError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message"))
        self.code: int = error.get("code", 0)
        self.data: dict[str, Any] = error.get("data") or {}
        self.error = error


class HostRefusal(Exception):
    """Raise from a host-call callback to answer the runner with an error object."""

    def __init__(self, code: int, message: str, type_: str) -> None:
        super().__init__(message)
        self.error = {"code": code, "message": message, "data": {"type": type_}}


class RunnerClient:
    def __init__(self, argv: Sequence[str], cwd: str | None = None, env: dict[str, str] | None = None,
                 on_call: HostCall | None = None, tap: Tap | None = None, transport: str = "stdio") -> None:
        if transport not in ("stdio", "fds"):
            raise ValueError(f"transport must be 'stdio' or 'fds', not {transport!r}")
        self.argv, self.cwd, self.transport = list(argv), cwd, transport
        self.tap = tap
        self.env = {**os.environ, **(env or {})}
        self.on_call = on_call
        self.logs: list[dict[str, Any]] = []
        self.garbage: list[bytes] = []
        self.stderr: list[str] = []
        self.stdout: list[str] = []  # the runner's own stdout, under the fds transport
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.WriteTransport | None = None
        self._ids = itertools.count(1)
        self._pending: dict[Any, asyncio.Future[Any]] = {}
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.transport == "stdio":
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, cwd=self.cwd, env=self.env, limit=LIMIT,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            assert self.proc.stdout and self.proc.stdin
            self._reader, self._writer = self.proc.stdout, self.proc.stdin.transport  # type: ignore[assignment]
            extra: list[Any] = []
        else:
            to_runner_r, to_runner_w = os.pipe()
            from_runner_r, from_runner_w = os.pipe()
            env = {**self.env, "STEPPE_RPC_FDS": f"{to_runner_r},{from_runner_w}"}
            try:
                self.proc = await asyncio.create_subprocess_exec(
                    *self.argv, cwd=self.cwd, env=env, limit=LIMIT, pass_fds=(to_runner_r, from_runner_w),
                    stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            finally:
                os.close(to_runner_r)
                os.close(from_runner_w)
            self._reader = asyncio.StreamReader(limit=LIMIT)
            reader = self._reader
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                         os.fdopen(from_runner_r, "rb", buffering=0))
            self._writer, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(to_runner_w, "wb", buffering=0))
            assert self.proc.stdout
            extra = [asyncio.ensure_future(self._collect(self.proc.stdout, self.stdout))]
        assert self.proc.stderr
        self._tasks = [asyncio.ensure_future(self._read()),
                       asyncio.ensure_future(self._collect(self.proc.stderr, self.stderr)), *extra]

    def send(self, msg: dict[str, Any]) -> None:
        if self.tap:
            self.tap("out", msg)
        self.send_raw(json.dumps(msg).encode() + b"\n")

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are, e.g. a line that is not JSON."""
        assert self._writer
        if not self._writer.is_closing():
            self._writer.write(data)

    def close_stdin(self) -> None:
        """Close the runner's protocol input (its stdin, or the fds transport's input pipe): EOF."""
        assert self._writer
        self._writer.close()

    async def wait_exit(self, timeout: float) -> int:
        assert self.proc
        return await asyncio.wait_for(self.proc.wait(), timeout)

    def request_nowait(self, method: str, params: dict[str, Any]) -> tuple[int, asyncio.Future[Any]]:
        rid = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        self.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        return rid, fut

    async def request(self, method: str, params: dict[str, Any], timeout: float = 10) -> Any:
        _, fut = self.request_nowait(method, params)
        return await asyncio.wait_for(fut, timeout)

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    async def _read(self) -> None:
        assert self._reader
        while line := await self._reader.readline():
            try:
                msg = json.loads(line)
                assert isinstance(msg, dict)
            except (ValueError, AssertionError):
                self.garbage.append(line)
                continue
            if self.tap:
                self.tap("in", msg)
            if "method" in msg:
                if msg["method"] == "log":
                    self.logs.append(msg.get("params") or {})
                elif "id" in msg:
                    asyncio.ensure_future(self._answer(msg))
            elif (fut := self._pending.pop(msg.get("id"), None)) and not fut.done():
                if "error" in msg:
                    fut.set_exception(RunnerError(msg["error"]))
                else:
                    fut.set_result(msg.get("result"))
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(EOFError("runner closed its stdout"))

    @staticmethod
    async def _collect(stream: asyncio.StreamReader, into: list[str]) -> None:
        while line := await stream.readline():
            into.append(line.decode(errors="replace"))

    async def _answer(self, msg: dict[str, Any]) -> None:
        try:
            if msg["method"] == "ping":
                result: Any = "pong"
            elif self.on_call is None:
                raise HostRefusal(-32601, f"no host call handler for {msg['method']}", "MethodNotFound")
            else:
                result = await self.on_call(msg["method"], msg.get("params") or {})
            self.send({"jsonrpc": "2.0", "id": msg["id"], "result": result})
        except HostRefusal as e:
            self.send({"jsonrpc": "2.0", "id": msg["id"], "error": e.error})

    async def close(self, timeout: float = 5) -> int | None:
        if not self.proc:
            return None
        if self.proc.returncode is None:
            try:
                await self.request("shutdown", {}, timeout=timeout)
            except Exception:
                pass
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        for t in self._tasks:
            await asyncio.gather(t, return_exceptions=True)
        return self.proc.returncode
