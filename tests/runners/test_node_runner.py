"""The Node runner (runners/node/runner.js) against protocol v1, driven as a real process by RunnerClient.

Fixture step files live in tests/runners/fixtures/node (their zod comes from `runners/node/setup.sh`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "protocol" / "kit"))

from client import HostRefusal, RunnerClient, RunnerError  # noqa: E402

RUNNER = ROOT / "runners" / "node" / "runner.js"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "node"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not installed"),
    pytest.mark.skipif(not (ROOT / "runners" / "node" / "node_modules" / "sucrase").is_dir()
                       or not (FIXTURES / "node_modules" / "zod").is_dir(),
                       reason="run ./scripts/setup-tests first"),
]

Calls = list[tuple[str, dict[str, Any]]]


class Host:
    """Answers the runner's host calls from an in-memory state, recording every call."""

    def __init__(self) -> None:
        self.calls: Calls = []
        self.state: dict[tuple[str, str], Any] = {}
        self.refuse_topics: set[str] = set()

    async def __call__(self, method: str, params: dict[str, Any]) -> Any:
        self.calls.append((method, params))
        if method == "emit" and params["event"]["topic"] in self.refuse_topics:
            raise HostRefusal(-32010, f"topic {params['event']['topic']} is not declared", "UndeclaredTopic")
        if method == "state.get":
            return self.state.get((params["group"], params["key"]))
        if method == "state.set":
            self.state[(params["group"], params["key"])] = params["value"]
            return params["value"]
        if method == "state.getGroup":
            return [v for (g, _), v in self.state.items() if g == params["group"]]
        if method == "streams.set":
            return {**params["data"], "id": params["id"]}
        return None

    def methods(self) -> list[str]:
        return [m for m, _ in self.calls]


StartRunner = Callable[..., Awaitable[RunnerClient]]


@pytest.fixture
async def start_runner() -> AsyncIterator[StartRunner]:
    clients: list[RunnerClient] = []

    async def start(on_call: Host | None = None, cwd: Path = FIXTURES) -> RunnerClient:
        client = RunnerClient([NODE or "node", str(RUNNER)], cwd=str(cwd), on_call=on_call)
        await client.start()
        clients.append(client)
        result = await client.request("initialize", {"protocolVersion": 1, "projectRoot": str(cwd),
                                                     "host": "steppe/test"})
        assert result["protocolVersion"] == 1
        return client

    yield start
    for client in clients:
        await client.close()
        assert client.garbage == [], client.garbage


@pytest.fixture
async def host() -> Host:
    return Host()


@pytest.fixture
async def runner(start_runner: StartRunner, host: Host) -> RunnerClient:
    return await start_runner(host)


def fixture(rel: str) -> str:
    return str(FIXTURES / rel)


def invoke_params(rel: str, trigger: str, input: Any = None, step: str = "S") -> dict[str, Any]:
    return {"path": fixture(rel), "step": step, "trigger": trigger, "input": input,
            "traceId": "t-1", "flows": ["orders"]}


def api_request(body: Any = None, headers: dict[str, str] | None = None,
                query: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"body": body, "headers": headers or {}, "pathParams": {}, "queryParams": query or {},
            "rawBody": json.dumps(body)}


async def test_handshake(start_runner: StartRunner) -> None:
    client = RunnerClient([NODE or "node", str(RUNNER)], cwd=str(FIXTURES))
    await client.start()
    try:
        with pytest.raises(RunnerError) as bad:
            await client.request("initialize", {"protocolVersion": 99, "projectRoot": str(FIXTURES), "host": "x"})
        assert bad.value.code == -32004
        result = await client.request("initialize", {"protocolVersion": 1, "projectRoot": str(FIXTURES),
                                                     "host": "steppe/test"})
        assert result == {"protocolVersion": 1, "language": "node", "runnerVersion": "0.1.0",
                          "pid": client.proc.pid}
        assert await client.request("ping", {}) == "pong"
        with pytest.raises(RunnerError) as unknown:
            await client.request("frobnicate", {})
        assert unknown.value.code == -32601
    finally:
        assert await client.close() == 0


async def test_typescript_api_step_with_zod_and_motia_type_import(runner: RunnerClient, host: Host) -> None:
    loaded = await runner.request("load", {"path": fixture("steps/create_order.step.ts"), "kind": "step"})
    assert loaded["handler"] is True and loaded["middleware"] == 0 and loaded["canAccess"] is False
    config = loaded["config"]
    assert config["name"] == "CreateOrder" and config["emits"] == ["order.created"]
    body = config["bodySchema"]
    assert body["type"] == "object"
    assert body["properties"]["item"] == {"type": "string", "minLength": 1}
    assert body["required"] == ["item"]  # a default makes qty optional on input
    assert config["responseSchema"]["201"]["properties"]["id"] == {"type": "string"}
    assert config["responseSchema"]["400"]["properties"]["error"] == {"type": "string"}

    response = await runner.request("invoke", invoke_params(
        "steps/create_order.step.ts", "api", api_request({"item": "tea", "qty": 2}), "CreateOrder"))
    assert response == {"status": 201, "body": {"id": "order-tea-2", "traceId": "t-1"},
                        "headers": {"x-order": "order-tea-2"}}
    (method, params), = host.calls
    assert method == "emit" and isinstance(params["invocation"], int)
    assert params["event"] == {"topic": "order.created",
                               "data": {"id": "order-tea-2", "item": "tea", "qty": 2}}
    log, = [entry for entry in runner.logs if entry["source"] == "logger"]
    assert log == {"invocation": params["invocation"], "level": "info", "msg": "order created",
                   "fields": {"orderId": "order-tea-2"}, "source": "logger"}


async def test_esm_syntax_js_step(runner: RunnerClient) -> None:
    loaded = await runner.request("load", {"path": fixture("steps/esm_hello.step.js"), "kind": "step"})
    assert loaded["config"]["input"]["properties"]["name"] == {"type": "string"}
    assert await runner.request("invoke", invoke_params("steps/esm_hello.step.js", "event", {"name": "ada"})) is None
    assert [entry["msg"] for entry in runner.logs] == ["hello ada"]


async def test_commonjs_step(runner: RunnerClient) -> None:
    loaded = await runner.request("load", {"path": fixture("steps/cjs_hello.step.js"), "kind": "step"})
    assert loaded["config"] == {"type": "api", "name": "CjsHello", "path": "/hello", "method": "GET", "emits": []}
    # output outside any invocation (here: while the file loads) is tied to none
    assert runner.logs == [{"invocation": None, "level": "info", "msg": "loading cjs_hello", "fields": {},
                            "source": "stdout"}]
    response = await runner.request("invoke", invoke_params(
        "steps/cjs_hello.step.js", "api", api_request(query={"name": "bo"})))
    assert response == {"status": 200, "body": {"hello": "bo"}, "headers": {}}


async def test_default_export_cron_step(runner: RunnerClient, host: Host) -> None:
    loaded = await runner.request("load", {"path": fixture("steps/default_export.step.ts"), "kind": "step"})
    assert loaded["config"]["cron"] == "0 3 * * *" and loaded["handler"] is True
    assert await runner.request("invoke", invoke_params("steps/default_export.step.ts", "cron")) is None
    assert host.state == {("cron", "ran"): True}


async def test_event_step_state_and_stream_calls(runner: RunnerClient, host: Host) -> None:
    await runner.request("load", {"path": fixture("steps/counter.step.ts"), "kind": "step"})
    host.state[("counters", "n")] = 4
    invoke_id, future = runner.request_nowait("invoke", invoke_params("steps/counter.step.ts", "event", {"by": 3}))
    assert await asyncio.wait_for(future, 10) is None
    assert host.methods() == ["state.get", "state.set", "state.getGroup", "streams.set",
                              "state.delete", "state.clear"]
    assert all(params["invocation"] == invoke_id for _, params in host.calls)
    assert host.calls[1][1] == {"invocation": invoke_id, "group": "counters", "key": "n", "value": 7, "ttl": 60}
    assert host.calls[3][1] == {"invocation": invoke_id, "stream": "orders", "groupId": "t-1", "id": "last",
                                "data": {"total": 7, "seen": 1}}


async def test_host_refusal_becomes_an_error_with_type_and_code(runner: RunnerClient, host: Host) -> None:
    host.refuse_topics.add("undeclared")
    await runner.request("load", {"path": fixture("steps/host_refusal.step.ts"), "kind": "step"})
    assert await runner.request("invoke", invoke_params("steps/host_refusal.step.ts", "event", {})) is None
    assert host.calls[1][1]["event"]["data"] == {
        "name": "UndeclaredTopic", "code": -32010, "message": "topic undeclared is not declared"}


async def test_middleware_short_circuit_and_pass_through(runner: RunnerClient) -> None:
    loaded = await runner.request("load", {"path": fixture("steps/guarded.step.ts"), "kind": "step"})
    assert loaded["middleware"] == 2 and "middleware" not in loaded["config"]
    denied = await runner.request("invoke", invoke_params("steps/guarded.step.ts", "api", api_request()))
    assert denied == {"status": 401, "body": {"error": "no token"}, "headers": {}}
    allowed = await runner.request("invoke", invoke_params(
        "steps/guarded.step.ts", "api", api_request(headers={"x-token": "secret"})))
    assert allowed == {"status": 200, "body": {"secret": 42}, "headers": {"x-mw": "seen"}}


async def test_binary_body_is_sent_as_base64(runner: RunnerClient) -> None:
    await runner.request("load", {"path": fixture("steps/binary.step.js"), "kind": "step"})
    response = await runner.request("invoke", invoke_params("steps/binary.step.js", "api", api_request()))
    assert "body" not in response
    assert base64.b64decode(response["bodyBase64"]) == bytes([0, 1, 2, 255])


async def test_thrown_error_shape_and_trimmed_stack(runner: RunnerClient) -> None:
    await runner.request("load", {"path": fixture("steps/throws.step.ts"), "kind": "step"})
    with pytest.raises(RunnerError) as raised:
        await runner.request("invoke", invoke_params("steps/throws.step.ts", "event", {"amount": 12}))
    error = raised.value
    assert error.code == -32000
    assert str(error) == "card declined for 12"
    assert error.data["type"] == "PaymentDeclined"
    stack = error.data["stack"]
    assert stack.startswith("PaymentDeclined: card declined for 12\n")
    # sucrase keeps line numbers: charge() throws on line 13 of the .ts file
    assert f"{fixture('steps/throws.step.ts')}:13:" in stack
    assert "runners/node" not in stack and "node:internal" not in stack
    assert await runner.request("ping", {}) == "pong"


async def test_syntax_errors_answer_load_error_and_runner_stays_up(runner: RunnerClient) -> None:
    for rel, line in [("broken/syntax_error.step.ts", 4), ("broken/syntax_error_cjs.step.js", 4)]:
        with pytest.raises(RunnerError) as raised:
            await runner.request("load", {"path": fixture(rel), "kind": "step"})
        error = raised.value
        assert error.code == -32001 and error.data["type"] == "SyntaxError", error.error
        assert f"{fixture(rel)}:{line}" in str(error)
        assert error.data["stack"].startswith(f"{fixture(rel)}:{line}\n")
        assert "runners/node" not in error.data["stack"]
    with pytest.raises(RunnerError) as raised:
        await runner.request("invoke", invoke_params("broken/syntax_error.step.ts", "event", {}))
    assert raised.value.code == -32003
    loaded = await runner.request("load", {"path": fixture("steps/cjs_hello.step.js"), "kind": "step"})
    assert loaded["handler"] is True


async def test_bad_configs_name_the_problem(runner: RunnerClient) -> None:
    with pytest.raises(RunnerError) as bigint:
        await runner.request("load", {"path": fixture("broken/bigint_config.step.js"), "kind": "step"})
    assert bigint.value.code == -32001 and bigint.value.data["type"] == "ConfigError"
    assert "config.infrastructure.handler.ram" in str(bigint.value)
    with pytest.raises(RunnerError) as missing:
        await runner.request("load", {"path": fixture("broken/no_config.step.js"), "kind": "step"})
    assert "no config" in str(missing.value)
    with pytest.raises(RunnerError) as absent:
        await runner.request("load", {"path": fixture("steps/does_not_exist.step.js"), "kind": "step"})
    assert absent.value.code == -32001 and absent.value.data["type"] == "Error"


async def test_console_output_is_captured_per_invocation(runner: RunnerClient) -> None:
    await runner.request("load", {"path": fixture("steps/noisy.step.js"), "kind": "step"})
    invoke_id, future = runner.request_nowait("invoke", invoke_params("steps/noisy.step.js", "event", {}))
    assert await asyncio.wait_for(future, 10) is None
    assert [(entry["source"], entry["level"], entry["msg"]) for entry in runner.logs] == [
        ("stdout", "info", "first line"),
        ("stdout", "info", "two"),
        ("stdout", "info", "lines"),
        ("stdout", "info", "partial line"),
        ("stderr", "error", "to stderr"),  # console.error: ERROR (other stderr writes: warn)
        ("stdout", "info", "no newline at the end"),
    ]
    assert all(entry["invocation"] == invoke_id for entry in runner.logs)
    assert runner.garbage == []


async def test_fifty_concurrent_invocations_overlap(runner: RunnerClient, host: Host) -> None:
    await runner.request("load", {"path": fixture("steps/sleepy.step.js"), "kind": "step"})
    started = time.monotonic()
    futures = [runner.request_nowait("invoke", invoke_params("steps/sleepy.step.js", "event", {"ms": 300, "n": n}))[1]
               for n in range(50)]
    assert await runner.request("ping", {}) == "pong"
    assert not any(future.done() for future in futures)  # answered while all the handlers sleep
    assert await asyncio.wait_for(asyncio.gather(*futures), 10) == [None] * 50
    assert time.monotonic() - started < 1.2
    assert sorted(int(key) for (_, key) in host.state) == list(range(50))


async def test_cancel_answers_at_once_and_drops_the_handler(runner: RunnerClient, host: Host) -> None:
    await runner.request("load", {"path": fixture("steps/sleepy.step.js"), "kind": "step"})
    invoke_id, future = runner.request_nowait("invoke", invoke_params("steps/sleepy.step.js", "event",
                                                                      {"ms": 300, "n": 1}))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    runner.notify("cancel", {"id": invoke_id})
    runner.notify("cancel", {"id": 9999})  # unknown ids are ignored
    with pytest.raises(RunnerError) as raised:
        await asyncio.wait_for(future, 5)
    assert raised.value.code == -32002 and time.monotonic() - started < 0.25  # before the handler wakes
    await asyncio.sleep(0.4)  # the handler wakes up: its state.set is refused inside the runner
    assert host.calls == []
    assert [(entry["msg"], entry["fields"]) for entry in runner.logs] == [("aborted", {"reason": "CancelledError"})]
    assert await runner.request("ping", {}) == "pong"


async def test_non_serialisable_emit_is_refused_in_the_runner(runner: RunnerClient, host: Host) -> None:
    await runner.request("load", {"path": fixture("steps/circular_emit.step.js"), "kind": "step"})
    with pytest.raises(RunnerError) as raised:
        await runner.request("invoke", invoke_params("steps/circular_emit.step.js", "event", {}))
    assert raised.value.code == -32000 and raised.value.data["type"] == "TypeError"
    assert str(raised.value).startswith("emit data is not JSON-serialisable: Converting circular structure")
    assert fixture("steps/circular_emit.step.js") in raised.value.data["stack"]
    assert host.calls == []


async def test_stream_file_with_can_access(runner: RunnerClient) -> None:
    path = "steps/orders.stream.ts"
    loaded = await runner.request("load", {"path": fixture(path), "kind": "stream"})
    assert loaded["handler"] is False and loaded["canAccess"] is True and loaded["middleware"] == 0
    assert loaded["config"]["name"] == "orders" and "canAccess" not in loaded["config"]
    assert loaded["config"]["schema"]["required"] == ["total", "seen"]
    assert loaded["config"]["baseConfig"] == {"storageType": "default"}
    allowed = {"subscription": {"groupId": "u1"}, "authContext": {"userId": "u1"}}
    assert await runner.request("invoke", invoke_params(path, "canAccess", allowed)) is True
    denied = {"subscription": {"groupId": "u2", "id": "x"}, "authContext": None}
    assert await runner.request("invoke", invoke_params(path, "canAccess", denied)) is False
    with pytest.raises(RunnerError) as raised:
        await runner.request("invoke", invoke_params(path, "event", {}))
    assert raised.value.code == -32602


async def test_auth_file(runner: RunnerClient) -> None:
    path = "auth/authenticate.ts"
    loaded = await runner.request("load", {"path": fixture(path), "kind": "auth"})
    assert loaded == {"config": {}, "handler": False, "middleware": 0, "canAccess": False}
    request = {"headers": {"authorization": "Bearer good"}, "url": "/ws"}
    auth = await runner.request("invoke", invoke_params(path, "authenticate", request))
    assert auth == {"userId": "u1", "url": "/ws"}
    with pytest.raises(RunnerError) as raised:
        await runner.request("invoke", invoke_params(path, "authenticate", {"headers": {}, "url": "/ws"}))
    assert raised.value.code == -32000 and str(raised.value) == "bad token"


async def test_type_module_package(runner: RunnerClient) -> None:
    tla = await runner.request("load", {"path": fixture("esm_pkg/steps/top_level_await.step.js"), "kind": "step"})
    assert tla["config"]["input"]["required"] == ["n"]
    await runner.request("invoke", invoke_params("esm_pkg/steps/top_level_await.step.js", "event", {"n": 1}))
    plain = await runner.request("load", {"path": fixture("esm_pkg/steps/plain_esm.step.js"), "kind": "step"})
    assert plain["config"]["name"] == "PlainEsm"
    await runner.request("invoke", invoke_params("esm_pkg/steps/plain_esm.step.js", "event", {"n": 2}))
    assert [(entry["msg"], entry["fields"]) for entry in runner.logs] == [
        ("hi", {"loadedFrom": fixture("esm_pkg/steps/top_level_await.step.js"), "n": 1}),
        ("helped 2", {}),
    ]


async def test_second_load_reevaluates_the_file(runner: RunnerClient, tmp_path: Path) -> None:
    step = tmp_path / "greet.step.js"
    for greeting in ["hello", "bonjour"]:
        step.write_text(
            f"export const config = {{ type: 'api', name: 'Greet', path: '/{greeting}', method: 'GET', emits: [] }}\n"
            f"export const handler = async () => ({{ status: 200, body: '{greeting}' }})\n")
        loaded = await runner.request("load", {"path": str(step), "kind": "step"})
        assert loaded["config"]["path"] == f"/{greeting}"
        params = {"path": str(step), "step": "Greet", "trigger": "api", "input": api_request(),
                  "traceId": "t", "flows": []}
        assert (await runner.request("invoke", params))["body"] == greeting


async def test_long_lines_both_ways(runner: RunnerClient) -> None:
    await runner.request("load", {"path": fixture("steps/echo_size.step.js"), "kind": "step"})
    text = "é" * 3_000_000  # 6 MB of UTF-8, split across many pipe reads and multi-byte boundaries
    response = await runner.request("invoke", invoke_params(
        "steps/echo_size.step.js", "api", api_request({"text": text})), timeout=20)
    assert response["body"] == {"size": len(text)}


async def test_unparseable_line_is_ignored(runner: RunnerClient) -> None:
    assert runner.proc and runner.proc.stdin
    runner.proc.stdin.write(b"this is not json\n{\"jsonrpc\": \"2.0\", \"id\": 77, \"result\": 1}\n")
    assert await runner.request("ping", {}) == "pong"
    await asyncio.sleep(0.05)
    assert any("unparseable" in line for line in runner.stderr)


async def test_shutdown_exits_zero_and_eof_too(start_runner: StartRunner) -> None:
    client = await start_runner()
    assert await client.request("shutdown", {}) is None
    assert await asyncio.wait_for(client.proc.wait(), 5) == 0
    other = await start_runner()
    assert other.proc and other.proc.stdin
    other.proc.stdin.close()
    assert await asyncio.wait_for(other.proc.wait(), 5) == 0


def test_setup_script_is_executable() -> None:
    assert os.access(ROOT / "runners" / "node" / "setup.sh", os.X_OK)
