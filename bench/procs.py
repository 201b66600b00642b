"""Processes the benchmarks start: servers on free ports, Steppe hosts, and their memory (RSS)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Self

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
RAW_STARLETTE = '''
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def hello(request):
    body = await request.json()
    return JSONResponse({"hello": body["name"]})

app = Starlette(routes=[Route("/hello", hello, methods=["POST"])])
'''
# S10's peer: the same handler as a FastAPI user writes it (a pydantic model for the body, a dict returned)
FASTAPI_APP = '''
from fastapi import FastAPI
from pydantic import BaseModel

class Hello(BaseModel):
    name: str

app = FastAPI()

@app.post("/hello")
async def hello(body: Hello):
    return {"hello": body.name}
'''


def stop_process(proc: subprocess.Popen[Any], grace: float = 20) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `grace` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_files(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root


def steppe_command() -> list[str]:
    """The `steppe` console script beside this interpreter (what a user runs), else `python -m steppe.cli`."""
    script = Path(PYTHON).with_name("steppe")
    return [str(script)] if script.exists() else [PYTHON, "-m", "steppe.cli"]


class Server:
    """A process serving HTTP on 127.0.0.1:port, its output in a log file; stop() ends it (SIGTERM, then KILL)."""

    def __init__(self, cmd: list[str], port: int, log: Path, cwd: Path | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.port, self.url, self.log_path = port, f"http://127.0.0.1:{port}", log
        self._log = log.open("ab")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(cmd, cwd=cwd, env={**os.environ, **(env or {})},
                                     stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_http(self, path: str, timeout: float = 60) -> Self:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.log_path.name}: exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                httpx.get(self.url + path, timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.02)
        raise RuntimeError(f"{self.log_path.name}: no answer on {path} after {timeout}s:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        stop_process(self.proc)
        self._log.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def uvicorn_app(workdir: Path, module: str, source: str) -> Server:
    """`source` (a module defining `app`) on uvicorn, one worker, uvloop + httptools (as the host runs)."""
    (workdir / f"{module}.py").write_text(source)
    port = free_port()
    return Server([PYTHON, "-m", "uvicorn", f"{module}:app", "--host", "127.0.0.1", "--port", str(port),
                   "--workers", "1", "--loop", "uvloop", "--http", "httptools", "--log-level", "warning"],
                  port, workdir / f"{module}-{port}.log", cwd=workdir)


def raw_starlette(workdir: Path) -> Server:
    """The baseline: the same tiny handler in raw Starlette."""
    return uvicorn_app(workdir, "raw_app", RAW_STARLETTE)


def fastapi_peer(workdir: Path) -> Server:
    """S10's peer: the same handler in FastAPI, served exactly as the raw Starlette baseline."""
    return uvicorn_app(workdir, "fastapi_app", FASTAPI_APP)


BENCH_ADMIN_TOKEN = "bench-admin-token"


class Host(Server):
    """`steppe start` (or `dev`) on a project, with settings as STEPPE_* env vars."""

    def __init__(self, root: Path, mode: str = "start", fresh: bool = True, **settings: str) -> None:
        if fresh:
            shutil.rmtree(root / ".steppe", ignore_errors=True)
        port = free_port()
        env = {f"STEPPE_{k.upper()}": v for k, v in settings.items()}
        env.setdefault("STEPPE_ADMIN_TOKEN", BENCH_ADMIN_TOKEN)  # `start` serves the admin API only with one
        self.admin_headers = {"authorization": f"Bearer {env['STEPPE_ADMIN_TOKEN']}"}
        super().__init__([*steppe_command(), mode, "--root", str(root), "--host", "127.0.0.1", "--port", str(port)],
                         port, root.parent / f"{root.name}-{mode}-{port}.log", cwd=root, env=env)

    def ready(self, timeout: float = 60) -> Self:
        return self.wait_http("/__steppe/health", timeout)

    def runner_pids(self) -> dict[str, int]:
        runners = httpx.get(f"{self.url}/__steppe/runners", timeout=10, headers=self.admin_headers).json()["runners"]
        return {lang: int(r["pid"]) for lang, r in runners.items() if r.get("pid")}

    def rss_mb(self) -> dict[str, float]:
        """RSS of the host and of each runner, and `total` over the host and all its descendants."""
        out = {"host": rss_mb(self.pid)}
        for lang, pid in self.runner_pids().items():
            out[lang] = rss_mb(pid)
        out["total"] = tree_rss_mb(self.pid)
        return out


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def tree_rss_mb(pid: int) -> float:
    root = psutil.Process(pid)
    total = 0
    for p in [root, *root.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20
