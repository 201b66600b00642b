"""The Node runner's own memory: once its tables of pending host calls and running invocations sit in old
space (after the first full GC), a burst of calls or invocations leaves old space as it found it. A V8 Map
there left each hash table it regrew or shrank to in old space, holding settled calls' promises through
every scavenge: several MB more per 10,000 calls until the next full GC (bench S8's Node runner RSS)."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "protocol" / "kit"))

from client import RunnerClient  # noqa: E402

RUNNER = ROOT / "runners" / "node" / "runner.js"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "node"
STEP = str(FIXTURES / "steps" / "old_space.step.js")
NODE = shutil.which("node")
MB = 1 << 20

pytestmark = [pytest.mark.skipif(NODE is None, reason="node is not installed"), pytest.mark.timeout(60)]


async def _emit_answered(method: str, params: dict[str, Any]) -> None:
    return None


async def _runner() -> RunnerClient:
    # the young generation the host gives the Node runner (host/runners/registry.py)
    client = RunnerClient([NODE or "node", "--max-semi-space-size=4", str(RUNNER)], cwd=str(FIXTURES),
                          on_call=_emit_answered)
    await client.start()
    await client.request("initialize", {"protocolVersion": 1, "projectRoot": str(FIXTURES), "host": "steppe/test"})
    await client.request("load", {"path": STEP, "kind": "step"})
    return client


async def _old_space(client: RunnerClient, op: str, n: int = 0) -> dict[str, int]:
    request = {"body": {"op": op, "n": n}, "headers": {}, "pathParams": {}, "queryParams": {}, "rawBody": ""}
    answer = await client.request("invoke", {"path": STEP, "step": "OldSpace", "trigger": "api", "input": request,
                                             "traceId": "t-1", "flows": []}, timeout=50)
    return answer["body"]  # type: ignore[no-any-return]


async def test_a_burst_of_host_calls_after_a_full_gc_leaves_old_space_flat() -> None:
    client = await _runner()
    try:
        await _old_space(client, "emits", 2000)  # the call table and the code paths warm
        await _old_space(client, "collect")
        burst = await _old_space(client, "emits", 10_000)
        assert burst["after"] - burst["before"] < 1.5 * MB, burst
    finally:
        await client.close()


async def test_a_burst_of_invocations_after_a_full_gc_leaves_old_space_flat() -> None:
    client = await _runner()
    try:
        async def wave(n: int) -> None:
            for _ in range(n // 100):
                await asyncio.gather(*(_old_space(client, "used") for _ in range(100)))

        await wave(1000)
        before = (await _old_space(client, "collect"))["used"]
        await wave(10_000)
        after = (await _old_space(client, "used"))["used"]
        assert after - before < 1.5 * MB, (before, after)
    finally:
        await client.close()
