"""A project shaped the way `motia create` 0.4-0.10 generated it (zod 3 pinned): noop → API (zod 3 body and
response) → event (zod 3 input) sets state → event reads it back. Every step loads and the flow runs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
from websockets.asyncio.client import connect

from conftest import REPO, RunningHost, wait_until, write_project

ZOD3 = REPO / "tests" / "compat" / "fixtures" / "zod3" / "node_modules"

pytestmark = pytest.mark.skipif(not (ZOD3 / "zod").is_dir(), reason="run ./scripts/setup-tests (zod 3 fixture)")

FILES = {
    "package.json": '{"name": "old-motia-app", "dependencies": {"motia": "^0.4.0", "zod": "^3.24.4"}}',
    "steps/00-start.step.ts": """
        import { NoopConfig } from 'motia'

        export const config: NoopConfig = {
          type: 'noop',
          name: 'Kickoff',
          virtualSubscribes: [],
          virtualEmits: ['/greet'],
          flows: ['greetings'],
        }
    """,
    "steps/01-greet.step.ts": """
        import { ApiRouteConfig, Handlers } from 'motia'
        import { z } from 'zod'

        export const config: ApiRouteConfig = {
          type: 'api',
          name: 'GreetApi',
          method: 'POST',
          path: '/greet',
          emits: ['remember-greeting'],
          bodySchema: z.object({ who: z.string().min(1), times: z.number().int().default(1) }),
          responseSchema: { 200: z.object({ traceId: z.string(), queued: z.boolean() }) },
          virtualSubscribes: ['/greet'],
          flows: ['greetings'],
        }

        export const handler: Handlers['GreetApi'] = async (req, { emit, traceId, logger }) => {
          logger.info('greeting requested', { who: req.body.who })
          await emit({ topic: 'remember-greeting', data: { who: req.body.who } })
          return { status: 200, body: { traceId, queued: true } }
        }
    """,
    "steps/02-remember.step.ts": """
        import { EventConfig, Handlers } from 'motia'
        import { z } from 'zod'

        export const config: EventConfig = {
          type: 'event',
          name: 'RememberGreeting',
          subscribes: ['remember-greeting'],
          emits: ['verify-greeting'],
          input: z.object({ who: z.string() }),
          flows: ['greetings'],
        }

        export const handler: Handlers['RememberGreeting'] = async (input, { traceId, state, emit }) => {
          await state.set<string>(traceId, 'greeting', `hello ${input.who}`)
          await emit({ topic: 'verify-greeting', data: { key: 'greeting', expected: `hello ${input.who}` } })
        }
    """,
    "steps/03-verify.step.ts": """
        import { EventConfig, Handlers } from 'motia'
        import { z } from 'zod'

        export const config: EventConfig = {
          type: 'event',
          name: 'VerifyGreeting',
          subscribes: ['verify-greeting'],
          emits: [],
          input: z.object({ key: z.string(), expected: z.string() }),
          flows: ['greetings'],
        }

        export const handler: Handlers['VerifyGreeting'] = async (input, { traceId, state, logger, streams }) => {
          const value = await state.get<string>(traceId, input.key)
          logger.info(value === input.expected ? 'greeting verified' : 'greeting mismatch', { value })
          await streams.greetings.set(traceId, 'latest', { text: value, verified: value === input.expected })
        }
    """,
    "steps/greetings.stream.ts": """
        import { StateStreamConfig } from 'motia'
        import { z } from 'zod'

        export const config: StateStreamConfig = {
          name: 'greetings',
          schema: z.object({ text: z.string(), verified: z.boolean() }),
          baseConfig: { storageType: 'default' },
        }
    """,
}


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    root = write_project(tmp_path_factory.mktemp("zod3") / "old-motia-app", FILES)
    (root / "node_modules").symlink_to(ZOD3)
    running = RunningHost(root, [], {"STEPPE_BUS": "memory", "STEPPE_STATE": "memory",
                                     "STEPPE_STREAMS": "memory", "STEPPE_RETRY_BASE": "0.01"}).wait_ready()
    yield running
    running.stop()


def test_every_step_of_a_zod3_project_loads(host: RunningHost) -> None:
    steps = httpx.get(f"{host.url}/__steppe/steps").json()["steps"]
    assert {s["name"]: s["status"] for s in steps} == {
        "Kickoff": "ok", "GreetApi": "ok", "RememberGreeting": "ok", "VerifyGreeting": "ok"}, steps


def test_zod3_flow_runs_end_to_end(host: RunningHost) -> None:
    r = httpx.post(f"{host.url}/greet", json={"who": "ada"})
    assert r.status_code == 200, r.text
    trace_id = r.json()["traceId"]
    assert r.json()["queued"] is True

    def verified() -> list[dict]:
        logs = httpx.get(f"{host.url}/__steppe/logs", params={"traceId": trace_id}).json()
        entries = logs if isinstance(logs, list) else logs.get("logs", logs.get("entries", []))
        return [e for e in entries if "greeting" in str(e.get("msg")) and e.get("step") == "VerifyGreeting"]

    found = wait_until(verified, 10, "VerifyGreeting's log line")
    assert found[0]["msg"] == "greeting verified", found
    asyncio.run(_expect_stream_item(host, trace_id))


async def _expect_stream_item(host: RunningHost, trace_id: str) -> None:
    """The stream whose schema is a zod 3 object loaded, and holds what the flow's last step wrote."""
    async with connect(host.url.replace("http", "ws")) as ws:
        await ws.send(json.dumps({"type": "join", "data": {"streamName": "greetings", "groupId": trace_id,
                                                              "id": "latest", "subscriptionId": "s1"}}))
        message = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert message["event"] == {"type": "sync", "data": {"id": "latest", "text": "hello ada", "verified": True}}


def test_zod3_body_schema_is_enforced_with_defaults_optional(host: RunningHost) -> None:
    bad = httpx.post(f"{host.url}/greet", json={"who": ""})
    assert bad.status_code == 400, bad.text
    assert "who" in bad.text
    wrong_type = httpx.post(f"{host.url}/greet", json={"who": "x", "times": "twice"})
    assert wrong_type.status_code == 400, wrong_type.text
    # `times` has a default, so the body may leave it out; zod 3 strips unknown keys, so extras pass
    assert httpx.post(f"{host.url}/greet", json={"who": "x", "extra": 1}).status_code == 200


def test_an_event_failing_its_zod3_input_is_dead_lettered_with_the_reason(host: RunningHost) -> None:
    r = httpx.post(f"{host.url}/__steppe/emit", json={"topic": "verify-greeting", "data": {"key": 5}})
    assert r.status_code < 300, r.text

    def lettered() -> list[dict]:
        letters = httpx.get(f"{host.url}/__steppe/dlq").json()
        return [d for d in letters if d.get("step") == "VerifyGreeting"]

    letter = wait_until(lettered, 10, "the bad event in the dead-letter store")[0]
    assert letter["attempts"] == 1, letter  # a schema failure is not retried
    assert "missing the required field 'expected'" in letter["error"], letter
    assert "/key: expected a string, got an integer (5)" in letter["error"], letter
