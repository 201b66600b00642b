"""Runners spawned before the host imports its modules (prespawn.py): the RunnerProcess of each language
adopts the process spawned for it only when it would have run the very same command and environment, talks
to it as to its own, and notices its exit; what nobody adopts is killed. Real runner processes throughout."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from steppe import prespawn
from steppe.cli import _spawn_runners_early
from steppe.runners import RunnerProcess, RunnerRegistry
from steppe.settings import load_settings

pytestmark = pytest.mark.timeout(60)

STEP = """config = {"type": "api", "name": "Hello", "path": "/hello", "method": "GET", "emits": []}

async def handler(req, ctx):
    return {"status": 200, "body": {"pid": __import__("os").getpid()}}
"""


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "steps").mkdir()
    (tmp_path / "steps" / "hello_step.py").write_text(STEP)
    yield tmp_path
    prespawn.discard()


async def _on_request(*args: Any) -> Any:
    raise AssertionError(f"no host call expected: {args}")


def _process(root: Path) -> RunnerProcess:
    settings = load_settings(root)
    spec = RunnerRegistry(python=settings.python_executable(), project_root=settings.root).get("python")
    return RunnerProcess(spec, settings.root, on_request=_on_request, on_log=lambda record: None,
                         max_line=settings.max_line)


def _early(root: Path) -> subprocess.Popen[bytes]:
    prespawn.spawn_early(load_settings(root))
    return prespawn._spawned["python"].popen


async def test_the_runner_spawned_early_is_adopted_and_served(project: Path) -> None:
    early = _early(project)
    process = _process(project)
    await process.start()
    try:
        assert process.os_pid == early.pid and prespawn._spawned == {}  # no second python runner
        assert process.rpc is not None
        loaded = await process.rpc.call("load", {"path": str(project / "steps" / "hello_step.py"), "kind": "step"})
        assert loaded["config"]["name"] == "Hello"
    finally:
        await process.stop(2)
    assert early.returncode == 0 and not process.alive  # asked to shut down, and seen to exit


async def test_an_adopted_runner_that_dies_is_seen_to_exit(project: Path) -> None:
    early = _early(project)
    process = _process(project)
    await process.start()
    assert process.ended is not None
    os.kill(early.pid, signal.SIGKILL)
    why = await asyncio.wait_for(process.ended, 10)  # through its pidfd: no child watcher knows this process
    assert why == "runner was killed by signal SIGKILL" and process.pid is None
    await process.stop(1)


async def test_a_runner_spawned_with_another_environment_is_killed_and_one_spawned(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    early = _early(project)
    monkeypatch.setenv("STEPPE_TEST_CHANGED", "1")  # the host's environment changed after the early spawn
    process = _process(project)
    await process.start()
    try:
        assert process.os_pid != early.pid
        assert early.poll() is not None  # killed, and reaped
    finally:
        await process.stop(2)


async def test_a_runner_that_died_before_it_was_adopted_is_replaced(project: Path) -> None:
    early = _early(project)
    os.killpg(early.pid, signal.SIGKILL)
    early.wait()
    process = _process(project)
    await process.start()
    try:
        assert process.os_pid != early.pid and process.alive
    finally:
        await process.stop(2)


def test_runners_nobody_adopts_are_killed(project: Path) -> None:
    early = _early(project)
    prespawn.discard()
    assert early.poll() is not None and prespawn._spawned == {}


def test_a_host_that_will_refuse_its_limits_spawns_no_runner(project: Path) -> None:
    (project / "steppe.toml").write_text("max_line = 4096\n")  # smaller than a request may grow: start refuses
    prespawn.spawn_early(load_settings(project))
    assert prespawn._spawned == {}


def test_only_start_and_dev_with_arguments_it_understands_spawn_early(project: Path) -> None:
    for argv in (["list", "--root", str(project)], ["start", "--root", str(project), "--port", "x"],
                 ["start", "--root", str(project), "--bogus"], ["dev", "--root", str(project), "--help"]):
        assert _spawn_runners_early(argv) is None, argv
        assert prespawn._spawned == {}
    settings = _spawn_runners_early(["dev", "--root", str(project), "--port", "4123"])
    assert settings is not None and settings.port == 4123 and settings.root == project.resolve()
    assert set(prespawn._spawned) == {"python"}


def test_start_serves_through_the_runner_it_spawned_first(project: Path) -> None:
    """`steppe start` end to end (its command line spawns the runners early): the step answers, and from the
    host's only Python runner: an early spawn is either adopted or killed, never left running beside it."""
    import httpx
    import psutil

    port = _free_port()
    env = {**os.environ, "STEPPE_ADMIN_TOKEN": "t" * 32}
    host = subprocess.Popen([sys.executable, "-m", "steppe.cli", "start", "--root", str(project), "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        body = None
        for _ in range(300):
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/hello", timeout=1)
                if r.status_code == 200:
                    body = r.json()
                    break
            except httpx.HTTPError:
                pass
            asyncio.run(asyncio.sleep(0.1))
        assert body is not None, "the host did not answer"
        runners = [p for p in psutil.Process(host.pid).children() if "runner.py" in " ".join(p.cmdline())]
        assert [p.pid for p in runners] == [body["pid"]]
    finally:
        host.terminate()
        host.wait(30)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
