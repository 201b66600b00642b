"""Starting and stopping: SIGTERM (or SIGHUP) shuts runners down and exits 0; a killed host leaves no orphan runners."""

from __future__ import annotations

import signal
import time

import httpx
import psutil
import pytest

from conftest import write_project

PROJECT = {
    "steps/a_step.py": """
        config = {"type": "api", "name": "A", "path": "/a", "method": "GET", "emits": []}
        async def handler(req, ctx):
            return {"status": 200, "body": "a"}
    """,
    "steps/b.step.ts": """
        export const config = { type: 'api', name: 'B', path: '/b', method: 'GET', emits: [] }
        export const handler = async () => ({ status: 200, body: 'b' })
    """,
}


def _gone(pids: list[int], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_or_a_closed_terminal_stops_runners_and_exits_zero(tmp_path, start_host, sig):
    # SIGHUP (the terminal of `steppe dev` closed): seen, the host died at once (signal's default action),
    # with no drain of in-flight deliveries
    host = start_host(write_project(tmp_path, PROJECT))
    pids = [host.runner_pid("python"), host.runner_pid("node")]
    host.proc.send_signal(sig)
    assert host.proc.wait(20) == 0
    assert "shutting down" in host.logs()
    assert _gone(pids)


def test_killed_host_leaves_no_runner_behind(tmp_path, start_host):
    host = start_host(write_project(tmp_path, PROJECT))
    pids = [host.runner_pid("python"), host.runner_pid("node")]
    host.proc.kill()
    host.proc.wait(10)
    assert _gone(pids)  # each runner sees EOF on stdin and exits


def test_sigusr1_prints_every_threads_stack_and_the_host_serves_on(tmp_path, start_host):
    host = start_host(write_project(tmp_path, PROJECT))
    # seen in CI: a signal just after start-up, while the main thread was importing, crashed the host
    # (SIGSEGV: the dump read the main thread's frames from another thread as they changed); a burst of them
    for _ in range(20):
        host.proc.send_signal(signal.SIGUSR1)
        time.sleep(0.01)
    # faulthandler's format: every thread, the main one in `steppe dev`'s event loop
    text = host.wait_log(" in cmd_serve")
    assert "(most recent call first)" in text and "runners.py" in text  # asyncio's Runner.run, under cmd_serve
    assert httpx.get(f"{host.url}/a").text == "a"
    assert host.proc.poll() is None
