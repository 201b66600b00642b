"""Past `telemetry_rate` new traces a second, the Workbench records a sample of whole traces: an API request
that starts its trace is decided at once, and every hop its events cause follows that decision, across
runners and languages, so a trace is either recorded from its request to its last hop, or not at all."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from conftest import RunningHost, wait_until, write_project

REQUESTS = 40
FILES = {
    "steps/start_step.py": """
        config = {"type": "api", "name": "Start", "path": "/start", "method": "POST", "emits": ["first"]}

        async def handler(req, context):
            await context.emit({"topic": "first", "data": {"n": req["body"]["n"]}})
            return {"status": 200, "body": {"traceId": context.trace_id}}
    """,
    "steps/relay_step.py": """
        # delivered 2 s later, when the sample's tokens have come back: yet it follows its trace's decision
        config = {"type": "event", "name": "Relay", "subscribes": ["first"], "emits": ["second"],
                  "infrastructure": {"queue": {"delaySeconds": 2}}}

        async def handler(data, context):
            await context.emit({"topic": "second", "data": data})
    """,
    "steps/last.step.js": """
        exports.config = { type: 'event', name: 'Last', subscribes: ['second'], emits: [] }
        exports.handler = async (data, { state }) => { await state.set('done', String(data.n), true) }
    """,
}


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    root = write_project(tmp_path_factory.mktemp("sampling") / "chain", FILES)
    running = RunningHost(root, [], {"STEPPE_TELEMETRY_RATE": "3"})
    yield running.wait_ready()
    running.stop()


def test_past_the_rate_a_trace_is_recorded_from_its_request_to_its_last_hop_or_not_at_all(
        host: RunningHost) -> None:
    with httpx.Client(base_url=host.url, timeout=30) as http:
        traces = [http.post("/start", json={"n": n}).json()["traceId"] for n in range(REQUESTS)]
        wait_until(lambda: len(http.get("/__steppe/api/state/done").json()["keys"]) == REQUESTS, 30,
                   "every chain finished")
        shapes: dict[str, list[str]] = {}

        def shape(trace: str) -> tuple[list[str]] | None:
            """(steps recorded,) once the trace is absent (404) or whole; None while its rows are written."""
            r = http.get(f"/__steppe/api/traces/{trace}")
            if r.status_code == 404:
                return ([],)
            steps = sorted(i["step"] for i in r.json()["invocations"])
            return (steps,) if len(steps) >= 3 else None

        for trace in traces:
            shapes[trace] = wait_until(lambda t=trace: shape(t), 10, f"trace {trace} whole or absent")[0]
    recorded = [t for t, steps in shapes.items() if steps]
    assert all(steps == ["Last", "Relay", "Start"] for steps in shapes.values() if steps)
    assert 1 <= len(recorded) < REQUESTS  # a sample: the first at least, not all 40 within ~a second
