"""Hung plain-`def` Python handlers cannot starve the runner: seen, 70 hung sync calls filled the
64-thread pool and every later sync call answered 504 until they returned."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import REPO, RunningHost, write_project

_spec = importlib.util.spec_from_file_location("steppe_protocol_kit_client", REPO / "protocol" / "kit" / "client.py")
assert _spec and _spec.loader
kit = sys.modules.get(_spec.name) or importlib.util.module_from_spec(_spec)
if _spec.name not in sys.modules:
    sys.modules[_spec.name] = kit
    _spec.loader.exec_module(kit)

pytestmark = pytest.mark.timeout(120)

HUNG = """
    import time

    config = {"type": "api", "name": "Hung", "path": "/hung", "method": "GET", "emits": [],
              "infrastructure": {"handler": {"timeout": 2}}}

    def handler(req, context):
        time.sleep(3600)  # blocked in C: the cancel cannot interrupt it
"""
QUICK = """
    import threading

    config = {"type": "api", "name": "Quick", "path": "/quick", "method": "GET", "emits": []}

    def handler(req, context):
        return {"status": 200, "body": {"thread": threading.current_thread().name}}
"""


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory):
    root = write_project(tmp_path_factory.mktemp("syncpool"), {"steps/hung_step.py": HUNG,
                                                               "steps/quick_step.py": QUICK})
    running = RunningHost(root, [], None, mode="start")
    running.wait_ready()
    yield running
    running.stop()


async def test_seventy_hung_sync_calls_on_one_step_leave_other_sync_steps_answering(host: RunningHost):
    pid = host.runner_pid("python")
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=host.url, timeout=30, limits=limits) as http:
        started = time.monotonic()
        hung = [asyncio.create_task(http.get("/hung")) for _ in range(70)]
        await asyncio.sleep(0.5)
        # while all 70 are hanging
        quick = await http.get("/quick")
        assert quick.status_code == 200, quick.text
        assert time.monotonic() - started < 2, "the quick step waited for the hung one"
        answers = await asyncio.gather(*hung)
        assert [r.status_code for r in answers] == [504] * 70
        # after they timed out (their threads still blocked in time.sleep), and more hung calls queue up
        more = [asyncio.create_task(http.get("/hung")) for _ in range(20)]
        await asyncio.sleep(0.3)
        for _ in range(20):
            quick = await http.get("/quick")
            assert quick.status_code == 200, quick.text
        assert {r.status_code for r in await asyncio.gather(*more)} == {504}
    # without recycling the runner: one hung step does not saturate it
    assert host.runner_pid("python") == pid


async def test_a_runner_saturated_by_calls_that_ignore_cancel_drains_and_exits(tmp_path: Path):
    root = write_project(tmp_path, {"steps/hung_step.py": HUNG, "steps/quick_step.py": QUICK})
    client: Any = kit.RunnerClient([sys.executable, str(REPO / "runners" / "python" / "runner.py")],
                                   cwd=str(root), env={"STEPPE_PY_MAX_STUCK": "3",
                                                       "STEPPE_PY_THREADS_PER_STEP": "8"})
    await client.start()
    await client.request("initialize", {"protocolVersion": 1, "projectRoot": str(root), "host": "steppe/test"})
    for name in ("hung_step.py", "quick_step.py"):
        await client.request("load", {"path": str(root / "steps" / name), "kind": "step"})

    def params(name: str) -> dict[str, Any]:
        return {"path": str(root / "steps" / name), "step": name, "trigger": "api",
                "input": {"headers": {}, "body": None, "pathParams": {}, "queryParams": {}}, "traceId": "t",
                "flows": []}

    hung = [client.request_nowait("invoke", params("hung_step.py")) for _ in range(3)]
    await asyncio.sleep(0.3)
    for rid, _ in hung[:2]:
        client.notify("cancel", {"id": rid})
    # two stuck calls are below the limit: the runner still serves
    assert (await client.request("invoke", params("quick_step.py")))["status"] == 200
    client.notify("cancel", {"id": hung[2][0]})
    # the third reaches it: the runner says why, and exits once nothing else is running
    assert await client.wait_exit(10) == 0
    assert any("did not return after being cancelled" in log["msg"] for log in client.logs)
