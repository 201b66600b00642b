"""The Workbench at size, in a real browser: a generated 100-step project, a trace of 1,000 invocations
and 100,000 stored log lines render without freezing the page (the times are printed and bounded)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser import chromium, shot

from conftest import RunningHost, wait_until, write_project
from steppe.telemetry.store import TelemetryStore

FLOWS, CHAIN = 7, 14  # 98 steps in chains, plus the two of the burst: 100


def hundred_steps(root: Path) -> Path:
    files = {}
    for f in range(FLOWS):
        for i in range(CHAIN):
            name, flow = f"F{f}Step{i}", f"flow{f}"
            emits = [f"f{f}.t{i + 1}"] if i < CHAIN - 1 else []
            if i == 0:
                trigger = f'"type": "api", "path": "/f{f}", "method": "POST"'
            else:
                trigger = f'"type": "event", "subscribes": ["f{f}.t{i}"]'
            files[f"steps/f{f}/s{i}_step.py"] = (
                f'config = {{"name": "{name}", {trigger}, "emits": {emits!r}, "flows": ["{flow}"]}}\n\n'
                "async def handler(*args):\n    return {'status': 200, 'body': {}} if len(args) == 2 and "
                "isinstance(args[0], dict) and 'headers' in args[0] else None\n")
    files["steps/burst_step.py"] = """
        config = {"name": "Burst", "type": "api", "path": "/burst", "method": "POST", "emits": ["burst.item"],
                  "flows": ["burst"]}

        async def handler(req, context):
            for n in range(999):
                await context.emit({"topic": "burst.item", "data": {"n": n}})
            return {"status": 200, "body": {"traceId": context.trace_id}}
    """
    files["steps/burst_worker_step.py"] = """
        config = {"name": "BurstWorker", "type": "event", "subscribes": ["burst.item"], "emits": [],
                  "flows": ["burst"]}

        async def handler(input, context):
            await context.state.set("burst", str(input["n"]), input)
    """
    return write_project(root, files)


def stored_log_lines(root: Path, count: int) -> None:
    """`count` log lines written into the project's telemetry store before the host starts."""
    async def fill() -> None:
        (root / ".steppe").mkdir(exist_ok=True)
        store = TelemetryStore(root / ".steppe" / "telemetry.db", batch=10**9)
        now = time.time() - 60
        for n in range(count):
            store.add_log({"time": now + n / count, "level": "info", "msg": f"stored line {n}", "source": "logger",
                           "step": "F0Step1", "traceId": None})
            if n % 10_000 == 9_999:
                await store.flush()
        await store.stop()
        assert store.dropped == 0

    asyncio.run(fill())


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    root = hundred_steps(tmp_path_factory.mktemp("wb") / "hundred")
    stored_log_lines(root, 100_000)
    running = RunningHost(root, [], None).wait_ready(60)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def page(host: RunningHost) -> Iterator[Any]:
    with chromium() as context:
        yield context.new_page()


def metric(page: Any, name: str) -> float:
    return float(page.wait_for_function(f"() => window.__workbench && window.__workbench.{name}").json_value())


def test_a_100_step_graph_renders_without_freezing(page: Any, host: RunningHost) -> None:
    started = time.monotonic()
    page.goto(f"{host.url}/__steppe/ui/#/flows")
    page.wait_for_selector("[data-node='F6Step13']")
    drawn = metric(page, "flowsRenderMs")
    print(f"100-step graph: layout and first paint {drawn:.0f} ms, {1000 * (time.monotonic() - started):.0f} ms "
          "from navigation")
    assert page.locator("g.node").count() == 100
    assert page.locator("g.edge").count() == FLOWS * (CHAIN - 1) + 1
    assert drawn < 5000
    shot(page, "flows-100-steps")
    page.select_option("[data-testid='flow-select']", "flow3")
    page.wait_for_function("document.querySelectorAll('g.node').length === 14")


def test_a_trace_of_1000_invocations_renders_without_freezing(page: Any, host: RunningHost) -> None:
    trace_id = httpx.post(f"{host.url}/burst", timeout=60).json()["traceId"]

    def complete() -> bool:
        r = httpx.get(f"{host.url}/__steppe/api/traces/{trace_id}")
        return r.status_code == 200 and sum(i["status"] == "ok" for i in r.json()["invocations"]) == 1000

    wait_until(complete, 60, "1,000 invocations recorded")
    page.goto(f"{host.url}/__steppe/ui/#/traces/{trace_id}")
    page.wait_for_function("document.querySelectorAll('.tl-row').length === 1000")
    drawn = metric(page, "traceRenderMs")
    print(f"1,000-invocation trace: first paint {drawn:.0f} ms after its data arrived")
    assert drawn < 5000
    page.click(".tl-row[data-step='Burst'] .tl-label")
    page.wait_for_selector("text=emit ×999")
    shot(page, "trace-1000")


def test_100000_stored_log_lines_scroll_virtually(page: Any, host: RunningHost) -> None:
    started = time.monotonic()
    page.goto(f"{host.url}/__steppe/ui/#/logs?limit=100000&step=F0Step1")
    page.wait_for_selector("[data-testid='log-count'] >> text=100,000 line(s)", timeout=30_000)
    drawn = metric(page, "logsRenderMs")
    print(f"100,000 log lines: fetched and drawn in {drawn:.0f} ms ({1000 * (time.monotonic() - started):.0f} ms "
          "from navigation)")
    assert drawn < 10_000
    assert page.locator(".log-line").count() < 200  # only the visible lines are in the page
    page.wait_for_selector(".log-line:has-text('stored line 99999')")
    page.eval_on_selector("[data-testid='log-box']", "el => { el.scrollTop = el.scrollHeight / 2 }")
    page.wait_for_selector(".log-line:has-text('stored line 50000')")
    assert page.locator(".log-line").count() < 200
