"""A trace larger than `telemetry_per_trace` (a burst of events is one trace): its first invocations and
every failure are recorded, the rest only counted; the count reaches the trace API and the trace list."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from conftest import RunningHost, wait_until, write_project

EVENTS = 2000
CAP = 100
FILES = {
    "steps/burst.step.js": """
        exports.config = { type: 'api', name: 'Burst', path: '/burst', method: 'POST', emits: ['tick'] }
        exports.handler = async (req, { emit, traceId }) => {
          for (let i = 0; i < req.body.n; i += 200) {
            const batch = []
            for (let j = i; j < Math.min(req.body.n, i + 200); j++) batch.push(emit({ topic: 'tick', data: { i: j } }))
            await Promise.all(batch)
          }
          return { status: 200, body: { traceId } }
        }
    """,
    "steps/tick_step.py": """
        config = {"type": "event", "name": "Tick", "subscribes": ["tick"], "emits": [],
                  "infrastructure": {"queue": {"concurrency": 100, "maxRetries": 0}}}

        async def handler(data, context):
            await context.state.set("ticks", str(data["i"]), 1)
            if data["i"] == LAST:  # past the cap: recorded all the same, as every failure is
                raise RuntimeError("the last tick fails")
    """.replace("LAST", str(EVENTS - 1)),
}


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    root = write_project(tmp_path_factory.mktemp("cap") / "burst", FILES)
    running = RunningHost(root, [], {"STEPPE_TELEMETRY_PER_TRACE": str(CAP), "STEPPE_TELEMETRY_RATE": "0"})
    yield running.wait_ready()
    running.stop()


def test_a_trace_past_the_cap_keeps_its_first_invocations_and_failures_and_counts_the_rest(
        host: RunningHost) -> None:
    r = httpx.post(f"{host.url}/burst", json={"n": EVENTS}, timeout=60)
    assert r.status_code == 200, r.text
    trace_id = r.json()["traceId"]

    def complete() -> dict | None:
        r = httpx.get(f"{host.url}/__steppe/api/traces/{trace_id}", timeout=10)
        body = r.json() if r.status_code == 200 else None
        return body if body and len(body["invocations"]) + body["notRecorded"] == EVENTS + 1 else None

    trace = wait_until(complete, 60, f"{EVENTS + 1} invocations recorded or counted")
    recorded = trace["invocations"]
    assert len(recorded) == CAP + 1 and trace["notRecorded"] == EVENTS - CAP  # the first CAP, and the failure
    assert recorded[0]["step"] == "Burst" and all(i["step"] == "Tick" for i in recorded[1:])
    failed = [i for i in recorded if i["status"] == "error"]
    assert len(failed) == 1 and "the last tick fails" in failed[0]["error"] and trace["status"] == "error"
    listed = wait_until(lambda: [t for t in httpx.get(f"{host.url}/__steppe/api/traces", timeout=10).json()
                                 if t["traceId"] == trace_id], 10, "the trace in the list")
    assert listed[0]["invocations"] == CAP + 1 and listed[0]["notRecorded"] == EVENTS - CAP


def test_a_trace_under_the_cap_is_recorded_whole(host: RunningHost) -> None:
    r = httpx.post(f"{host.url}/burst", json={"n": CAP - 1}, timeout=60)
    trace_id = r.json()["traceId"]
    trace = wait_until(lambda: (b := httpx.get(f"{host.url}/__steppe/api/traces/{trace_id}").json()).get(
        "invocations") and len(b["invocations"]) == CAP and b, 30, f"{CAP} invocations recorded")
    assert trace["notRecorded"] == 0 and all(i["status"] == "ok" for i in trace["invocations"])
