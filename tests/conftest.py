"""Shared test tools: start a real `steppe` host process on a free port against a project folder."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI") == "true"


def need(tool: str) -> str:
    """The path of a tool the test needs: skipped locally when missing, a failure under CI."""
    path = shutil.which(tool)
    if path is None:
        if IN_CI:
            pytest.fail(f"{tool} is required under CI but not on PATH")
        pytest.skip(f"{tool} not installed")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_project(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root


def wait_until(pred, timeout: float, what: str, step: float = 0.05):  # noqa: ANN001, ANN201
    """The first truthy value of pred(), polled until `timeout` seconds; fails naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := pred():
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


ADMIN_TOKEN = "test-admin-token-0123456789"  # what `start`-mode test hosts get as STEPPE_ADMIN_TOKEN


class RunningHost:
    """`steppe <mode>` as a subprocess; `port` lets a second host take over a stopped one's address.
    `start`-mode hosts get ADMIN_TOKEN (unless `env` sets STEPPE_ADMIN_TOKEN itself); `admin_headers` carries
    it, and `admin_get`/`admin_post` send it to the admin API under /__steppe/."""

    def __init__(self, root: Path, args: list[str], env: dict[str, str] | None, mode: str = "dev",
                 port: int | None = None) -> None:
        self.root, self.port = root, port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(env or {})
        if mode == "start":
            env.setdefault("STEPPE_ADMIN_TOKEN", ADMIN_TOKEN)
        token = env.get("STEPPE_ADMIN_TOKEN", os.environ.get("STEPPE_ADMIN_TOKEN", ""))
        self.admin_headers = {"authorization": f"Bearer {token}"} if token else {}
        self.log_path = root / f"host-{self.port}-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "steppe.cli", mode, "--root", str(root), "--port", str(self.port), *args],
            stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})

    def wait_ready(self, timeout: float = 30) -> RunningHost:
        deadline = time.monotonic() + timeout
        last = "no answer yet"  # what the probe last got: said when the host is not ready in time
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"host exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                r = httpx.get(f"{self.url}/__steppe/health", timeout=1)
                if r.status_code == 200:
                    return self
                last = f"{r.status_code} {r.text[:200]}"
            except httpx.HTTPError as e:
                last = f"{type(e).__name__}: {e}"
            time.sleep(0.05)
        self.proc.send_signal(signal.SIGUSR1)  # the host prints its threads' stacks: where it is stuck
        time.sleep(0.5)
        raise AssertionError(f"host at {self.url} not ready after {timeout}s (last probe: {last}):\n{self.logs()}")

    async def ready(self, timeout: float = 30) -> None:
        """wait_ready for tests already inside an event loop (it must not be blocked)."""
        import asyncio

        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=1) as http:
            while time.monotonic() < deadline:
                assert self.proc.poll() is None, f"host exited with {self.proc.returncode}:\n{self.logs()}"
                try:
                    if (await http.get(f"{self.url}/__steppe/health")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError(f"host not ready after {timeout}s:\n{self.logs()}")

    def logs(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_log(self, needle: str, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in (text := self.logs()):
                return text
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} not in logs after {timeout}s:\n{self.logs()}")

    def admin_get(self, path: str, **kwargs) -> httpx.Response:  # noqa: ANN003
        return httpx.get(f"{self.url}{path}", headers=self.admin_headers, **kwargs)

    def admin_post(self, path: str, **kwargs) -> httpx.Response:  # noqa: ANN003
        return httpx.post(f"{self.url}{path}", headers=self.admin_headers, **kwargs)

    def runners(self) -> dict:
        """The admin view of the runners, queue counts and in-flight deliveries (/__steppe/runners)."""
        return self.admin_get("/__steppe/runners", timeout=5).json()

    def runner_pid(self, language: str, timeout: float = 10) -> int:
        """The pid of the language's live runner (its pid is null while it is down: wait for one)."""
        def pid() -> int | None:
            return self.runners()["runners"][language]["pid"]  # type: ignore[no-any-return]
        return int(wait_until(pid, timeout, f"a live {language} runner"))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def start_host() -> Iterator:
    started: list[RunningHost] = []

    def start(root: Path, *args: str, env: dict[str, str] | None = None, wait: bool = True,
              mode: str = "dev") -> RunningHost:
        host = RunningHost(root, list(args), env, mode)
        started.append(host)
        return host.wait_ready() if wait else host

    yield start
    for host in started:
        host.stop()
