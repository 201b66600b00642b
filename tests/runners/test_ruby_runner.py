"""The Ruby runner, driven over protocol v1 as a real process (runners/ruby/runner.rb)."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from steppe.runners.registry import RunnerRegistry

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "runners" / "ruby" / "runner.rb"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ruby"
STEPS = FIXTURES / "steps"


def _load_kit() -> Any:
    name = "steppe_protocol_kit_client"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "protocol" / "kit" / "client.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


kit = _load_kit()
HostRefusal, RunnerClient, RunnerError = kit.HostRefusal, kit.RunnerClient, kit.RunnerError


@pytest.fixture(autouse=True)
def _needs_ruby() -> None:
    if shutil.which("ruby") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("ruby is not on PATH")
        pytest.skip("ruby is not on PATH")


class FakeHost:
    """Answers the runner's host calls from memory and records them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.state: dict[str, dict[str, Any]] = {}
        self.streams: dict[tuple[str, str], dict[str, Any]] = {}

    async def __call__(self, method: str, params: dict[str, Any]) -> Any:
        self.calls.append((method, params))
        if method == "emit":
            if params["event"]["topic"] == "undeclared":
                raise HostRefusal(-32010, "topic 'undeclared' is not in this step's emits", "UndeclaredTopic")
            return None
        if method == "state.get" and params["group"] == "slow":
            await asyncio.sleep(0.3)
            return "late"
        if method.startswith("state."):
            group = self.state.setdefault(params["group"], {})
            return {
                "state.get": lambda: group.get(params["key"]),
                "state.set": lambda: group.setdefault(params["key"], params["value"]),
                "state.delete": lambda: group.pop(params["key"], None),
                "state.getGroup": lambda: list(group.values()),
                "state.clear": group.clear,
            }[method]()
        items = self.streams.setdefault((params["stream"], params.get("groupId", "")), {})
        if method == "streams.set":
            items[params["id"]] = {**params["data"], "id": params["id"]}
            return items[params["id"]]
        if method == "streams.get":
            return items.get(params["id"])
        if method == "streams.getGroup":
            return list(items.values())
        if method == "streams.send":
            return None
        raise HostRefusal(-32601, f"unexpected host call {method}", "MethodNotFound")

    def methods(self) -> list[str]:
        return [m for m, _ in self.calls]


def ruby_command() -> list[str]:
    """The command the host runs (`ruby --disable-gems runner.rb`, see lazy_gems.rb)."""
    command = list(RunnerRegistry(project_root=FIXTURES).get("ruby").command)
    assert command[1:] == ["--disable-gems", str(RUNNER)]
    return command


async def start_runner(host: FakeHost | None = None, root: Path = FIXTURES) -> Any:
    client = RunnerClient(ruby_command(), cwd=str(root), on_call=host or FakeHost())
    await client.start()
    client.host = client.on_call
    client.init = await client.request(
        "initialize", {"protocolVersion": 1, "projectRoot": str(root), "host": "steppe/test"})
    return client


@pytest.fixture
async def runner() -> Any:
    client = await start_runner()
    yield client
    await client.close()


async def load(client: Any, path: Path, kind: str = "step") -> dict[str, Any]:
    return await client.request("load", {"path": str(path), "kind": kind})


def invoke_params(path: Path, trigger: str, input_: Any, trace: str = "t-1") -> dict[str, Any]:
    return {"path": str(path), "step": path.name, "trigger": trigger, "input": input_,
            "traceId": trace, "flows": ["f1"]}


async def invoke(client: Any, path: Path, trigger: str, input_: Any = None, **kw: Any) -> Any:
    return await client.request("invoke", invoke_params(path, trigger, input_, **kw))


def api_input(body: Any = None, headers: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    return {"body": body, "headers": headers or {}, "pathParams": extra.get("pathParams", {}),
            "queryParams": extra.get("queryParams", {}), "rawBody": ""}


GEM_STEP = """
require 'minitest'  # a bundled gem: not in the standard library, found once RubyGems is loaded

def config
  { type: 'api', name: 'Gems', path: '/gems', method: 'GET', emits: [], description: $loaded_with }
end

def handler(req, context)
  { status: 200, body: { minitest: Minitest::VERSION, newer: Gem::Version.new('2.0') > Gem::Version.new('1.10') } }
end
"""


@pytest.mark.parametrize("gemfile", [False, True])
async def test_a_step_gets_its_gems_though_the_runner_starts_without_rubygems(tmp_path: Path, gemfile: bool) -> None:
    """Without a Gemfile, RubyGems loads on the first require the standard library cannot satisfy (and
    on `Gem`); with one, at start. Either way a step's gems and Gem::Version work as under plain `ruby`."""
    (tmp_path / "steps").mkdir()
    step = tmp_path / "steps" / "gems_step.rb"
    step.write_text("$loaded_with = defined?(::Gem) ? 'gems at start' : 'gems on demand'\n" + GEM_STEP)
    if gemfile:
        (tmp_path / "Gemfile").write_text("source 'https://rubygems.org'\n")
    client = await start_runner(root=tmp_path)
    try:
        loaded = await load(client, step)
        assert loaded["config"]["description"] == ("gems at start" if gemfile else "gems on demand")
        answer = await invoke(client, step, "api", api_input())
        assert answer["status"] == 200 and answer["body"]["newer"] is True
        assert answer["body"]["minitest"].count(".") == 2
        with pytest.raises(RunnerError) as missing:  # a gem that is not installed is still a load error
            await load(client, _write(tmp_path / "steps" / "missing_step.rb", "require 'no_such_gem_xyz'\n"))
        assert "no_such_gem_xyz" in str(missing.value)
    finally:
        await client.close()


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


async def test_handshake_and_version_check(runner: Any) -> None:
    assert runner.init["protocolVersion"] == 1
    assert runner.init["language"] == "ruby"
    assert runner.init["pid"] == runner.proc.pid
    assert isinstance(runner.init["runnerVersion"], str)
    with pytest.raises(RunnerError) as err:
        await runner.request("initialize", {"protocolVersion": 2, "projectRoot": "/", "host": "x"})
    assert err.value.code == -32004
    assert await runner.request("ping", {}) == "pong"


async def test_load_reports_each_kind(runner: Any) -> None:
    greet = await load(runner, STEPS / "greet_api.step.rb")
    assert greet["handler"] is True and greet["middleware"] == 2 and greet["canAccess"] is False
    assert greet["config"] == {
        "type": "api", "name": "Greet", "path": "/greet/:id", "method": "POST", "emits": [],
        "flows": ["greetings"],
        "bodySchema": {"type": "object", "properties": {"name": {"type": "string"}}},
    }
    event = await load(runner, STEPS / "remember_event_step.rb")
    assert event["config"]["subscribes"] == ["note.added"] and event["handler"] is True
    cron = await load(runner, STEPS / "tick_cron_step.rb")
    assert cron["config"]["cron"] == "*/5 * * * *" and cron["middleware"] == 0
    noop = await load(runner, STEPS / "graph_noop.step.rb")
    assert noop == {"config": {"type": "noop", "name": "Graph", "virtualSubscribes": [],
                               "virtualEmits": [{"topic": "note.added", "label": "someone writes"}]},
                    "handler": False, "middleware": 0, "canAccess": False}
    stream = await load(runner, STEPS / "todos.stream.rb", "stream")
    assert stream["config"]["name"] == "todos" and stream["config"]["schema"]["required"] == ["title"]
    assert stream["canAccess"] is True and stream["handler"] is False
    auth = await load(runner, FIXTURES / "stream_auth.rb", "auth")
    assert auth == {"config": {}, "handler": False, "middleware": 0, "canAccess": False}


async def test_files_are_isolated_and_reload_is_fresh(runner: Any, tmp_path: Path) -> None:
    await load(runner, STEPS / "twin_a_step.rb")
    b = await load(runner, STEPS / "twin_b_step.rb")
    assert b["config"]["name"] == "TwinB"  # from a top-level local
    assert (await invoke(runner, STEPS / "twin_a_step.rb", "api", api_input()))["body"] == "a"
    assert await invoke(runner, STEPS / "twin_b_step.rb", "api", api_input()) == {
        "status": 201, "body": "b", "headers": {}}

    step = tmp_path / "live_step.rb"
    step.write_text("def config = { type: 'event', name: 'V1', subscribes: ['x'], emits: [] }\n"
                    "def handler(input, ctx) = puts('v1')\n")
    assert (await load(runner, step))["config"]["name"] == "V1"
    step.write_text("def config = { type: 'event', name: 'V2', subscribes: ['x'], emits: [] }\n")
    reloaded = await load(runner, step)
    assert reloaded["config"]["name"] == "V2" and reloaded["handler"] is False


async def test_api_with_middleware_and_require_relative(runner: Any) -> None:
    path = STEPS / "greet_api.step.rb"
    await load(runner, path)
    result = await invoke(runner, path, "api",
                          api_input({"name": "Ada"}, pathParams={"id": "7"}, queryParams={"tag": ["a", "b"]}),
                          trace="t-greet")
    assert result == {
        "status": 200,
        "body": {"greeting": "Hello, Ada!", "same": ["Ada", "Ada"], "id": "7", "tags": ["a", "b"],
                 "trace": "t-greet", "flows": ["f1"]},
        "headers": {"content-type": "application/json", "x-stamped": "yes"},
    }
    blocked = await invoke(runner, path, "api", api_input({"name": "Eve"}, {"x-block": "1"}))
    assert blocked == {"status": 403, "body": {"error": "blocked"}, "headers": {"x-stamped": "yes"}}


async def test_event_state_calls_are_answered_by_the_host(runner: Any) -> None:
    path = STEPS / "remember_event_step.rb"
    await load(runner, path)
    rid, fut = runner.request_nowait("invoke", invoke_params(
        path, "event", {"note": {"id": "n1", "title": "Milk"}}, trace="t-9"))
    assert await asyncio.wait_for(fut, 10) is None
    host = runner.host
    assert host.methods() == ["state.set", "state.get", "state.getGroup", "state.getGroup", "state.delete",
                              "state.clear", "emit"]
    assert all(params["invocation"] == rid for _, params in host.calls)
    assert host.calls[0][1] == {"invocation": rid, "group": "t-9", "key": "n1",
                                "value": {"id": "n1", "title": "Milk"}, "ttl": 60}
    assert host.calls[-1][1]["event"] == {
        "topic": "note.saved", "data": {"title": "Milk", "count": 1, "from_symbol": "Milk"},
        "messageGroupId": "t-9"}


async def test_cron_handler_gets_context_and_logger(runner: Any) -> None:
    path = STEPS / "tick_cron_step.rb"
    await load(runner, path)
    rid, fut = runner.request_nowait("invoke", invoke_params(path, "cron", None, trace="t-cron"))
    assert await asyncio.wait_for(fut, 10) is None
    logs = [entry for entry in runner.logs if entry["source"] == "logger"]
    assert logs == [
        {"invocation": rid, "level": "info", "msg": "tick", "fields": {"trace": "t-cron"}, "source": "logger"},
        {"invocation": rid, "level": "warn", "msg": "careful", "fields": {"count": 2}, "source": "logger"},
    ]
    assert runner.host.calls[0][1]["event"] == {"topic": "ticked", "data": {"at": "now"}}


async def test_binary_body_is_sent_as_base64(runner: Any) -> None:
    path = STEPS / "bytes_api.step.rb"
    await load(runner, path)
    result = await invoke(runner, path, "api", api_input())
    assert "body" not in result
    assert base64.b64decode(result["bodyBase64"]) == b"\x89PNG\r\n\x1a\n\x00\xff"
    assert result["headers"] == {"content-type": "image/png"}


async def test_handler_error_has_type_message_and_user_stack(runner: Any) -> None:
    path = STEPS / "failing_step.rb"
    await load(runner, path)
    with pytest.raises(RunnerError) as err:
        await invoke(runner, path, "event", {"order": 42})
    assert err.value.code == -32000
    assert str(err.value) == "order 42 is invalid"
    assert err.value.data["type"] == "OrderError"
    frames = err.value.data["stack"].split("\n")
    assert frames[0].startswith(f"{path}:11:in ") and "check" in frames[0]
    assert frames[1].startswith(f"{path}:15:in ")
    assert all("runners/ruby" not in frame for frame in frames)
    # the runner stays up and keeps serving
    assert await runner.request("ping", {}) == "pong"
    await load(runner, STEPS / "twin_a_step.rb")
    assert (await invoke(runner, STEPS / "twin_a_step.rb", "api", api_input()))["body"] == "a"


async def test_syntax_error_fails_the_load_only(runner: Any) -> None:
    path = STEPS / "broken_step.rb"
    with pytest.raises(RunnerError) as err:
        await load(runner, path)
    assert err.value.code == -32001
    assert err.value.data["type"] == "SyntaxError"
    assert f"{path}:4" in str(err.value)
    with pytest.raises(RunnerError) as missing:
        await invoke(runner, path, "event", {})
    assert missing.value.code == -32003
    assert await runner.request("ping", {}) == "pong"


async def test_output_becomes_log_notifications(runner: Any) -> None:
    path = STEPS / "noisy_step.rb"
    await load(runner, path)
    rid, fut = runner.request_nowait("invoke", invoke_params(path, "event", {"n": 7}))
    assert await asyncio.wait_for(fut, 10) is None
    assert runner.garbage == []
    assert {"invocation": None, "level": "info", "msg": "loading noisy", "fields": {},
            "source": "stdout"} in runner.logs
    mine = [(entry["source"], entry["level"], entry["msg"]) for entry in runner.logs
            if entry["invocation"] == rid]
    assert mine == [
        ("stdout", "info", "line one 7"),
        ("stdout", "info", "partial joined"),
        ("stdout", "info", "written"),
        ("stdout", "info", "second"),
        ("stdout", "info", '[7, "x"]'),
        ("stdout", "info", "007"),
        ("stderr", "warn", "a warning"),
        ("stderr", "warn", "to stderr"),
        ("stdout", "info", "STDOUT constant"),
        ("stderr", "warn", "STDERR constant"),
        ("stdout", "info", "no newline at the end"),
    ]
    # what bypasses Ruby's IO (a child process writing to fd 1) lands on stderr, never on the protocol
    await runner.request("ping", {})
    assert "from a child process" in "".join(runner.stderr)


async def test_invocations_run_concurrently_and_ping_answers_meanwhile(runner: Any) -> None:
    path = STEPS / "sleepy_step.rb"
    await load(runner, path)
    started = time.monotonic()
    futures = [runner.request_nowait("invoke", invoke_params(path, "event", {"seconds": 0.5}))[1]
               for _ in range(30)]
    ping_started = time.monotonic()
    assert await runner.request("ping", {}) == "pong"
    assert time.monotonic() - ping_started < 0.3
    assert await asyncio.wait_for(asyncio.gather(*futures), 10) == [None] * 30
    assert time.monotonic() - started < 1.5


async def test_a_handler_waiting_out_of_sight_never_stalls_the_reading(runner: Any) -> None:
    # The reading thread runs the invokes it reads; it hands the reading on when a handler waits. Here
    # the wait is a join on the handler's own thread, whose host call needs the reading to go on, and
    # a quick invoke and a ping sit behind a sleeping invoke in the same write.
    runner.host.state["g"] = {"k": "v"}
    helper, sleepy = STEPS / "helper_thread_step.rb", STEPS / "sleepy_step.rb"
    await load(runner, helper)
    await load(runner, sleepy)
    assert await asyncio.wait_for(invoke(runner, helper, "event", {"group": "g"}), 5) is None
    assert {"invocation": runner.logs[-1]["invocation"], "level": "info", "msg": "helper got v", "fields": {},
            "source": "stdout"} in runner.logs
    started = time.monotonic()
    slow = runner.request_nowait("invoke", invoke_params(sleepy, "event", {"seconds": 1}))[1]
    quick = runner.request_nowait("invoke", invoke_params(sleepy, "event", {"seconds": 0}))[1]
    assert await runner.request("ping", {}) == "pong"
    assert await asyncio.wait_for(quick, 5) is None
    assert time.monotonic() - started < 0.5
    assert await asyncio.wait_for(slow, 5) is None


async def test_cancel_answers_at_once_and_runs_ensure(runner: Any) -> None:
    path = STEPS / "sleepy_step.rb"
    await load(runner, path)
    rid, fut = runner.request_nowait("invoke", invoke_params(path, "event", {"seconds": 30}))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    runner.notify("cancel", {"id": rid})
    with pytest.raises(RunnerError) as err:
        await asyncio.wait_for(fut, 5)
    assert err.value.code == -32002
    assert time.monotonic() - started < 1
    runner.notify("cancel", {"id": rid})  # cancelling again (or an unknown id) is ignored
    assert await invoke(runner, path, "event", {"seconds": 0}) is None
    assert {"invocation": rid, "level": "info", "msg": "cleanup 30", "fields": {},
            "source": "stdout"} in runner.logs


async def test_cancel_during_a_host_call_drops_the_late_answer(runner: Any) -> None:
    path = STEPS / "waiting_step.rb"
    await load(runner, path)
    rid, fut = runner.request_nowait("invoke", invoke_params(path, "event", {"group": "slow"}))
    while not runner.host.calls:
        await asyncio.sleep(0.01)
    runner.notify("cancel", {"id": rid})
    with pytest.raises(RunnerError) as err:
        await asyncio.wait_for(fut, 0.25)  # before the host answers the state.get
    assert err.value.code == -32002
    await asyncio.sleep(0.3)  # the late answer arrives and must go nowhere
    assert await runner.request("ping", {}) == "pong"
    assert await invoke(runner, path, "event", {"group": "fast"}) is None
    assert [entry["msg"] for entry in runner.logs if entry["source"] == "stdout"] == ["got "]
    assert runner.garbage == []


async def test_invoke_sent_right_behind_its_load_sees_the_file(runner: Any) -> None:
    path = STEPS / "twin_a_step.rb"
    _, loading = runner.request_nowait("load", {"path": str(path), "kind": "step"})
    _, invoking = runner.request_nowait("invoke", invoke_params(path, "api", api_input()))
    assert (await asyncio.wait_for(loading, 10))["config"]["name"] == "TwinA"
    assert (await asyncio.wait_for(invoking, 10))["body"] == "a"


@pytest.mark.parametrize("mode, reason", [
    ("object", "cannot encode Object as JSON"),
    ("nan", "NaN not allowed in JSON"),
    ("bytes", ""),
])
async def test_emit_refuses_data_that_is_not_json(runner: Any, mode: str, reason: str) -> None:
    path = STEPS / "emitter_step.rb"
    await load(runner, path)
    with pytest.raises(RunnerError) as err:
        await invoke(runner, path, "event", {"mode": mode})
    assert err.value.data["type"] == "TypeError"
    assert str(err.value).startswith("emit data is not JSON-serialisable: ")
    assert reason in str(err.value)
    assert runner.host.calls == []
    assert await invoke(runner, path, "event", {"mode": "fine"}) is None
    assert runner.host.methods() == ["emit"]


async def test_host_refusal_surfaces_as_host_error(runner: Any) -> None:
    path = STEPS / "emitter_step.rb"
    await load(runner, path)
    with pytest.raises(RunnerError) as err:
        await invoke(runner, path, "event", {"mode": "refused"})
    assert err.value.code == -32000
    assert err.value.data["type"] == "UndeclaredTopic"
    assert str(err.value) == "topic 'undeclared' is not in this step's emits"

    rid, fut = runner.request_nowait("invoke", invoke_params(path, "event", {"mode": "refused_rescued"}))
    assert await asyncio.wait_for(fut, 10) is None
    [warning] = [entry for entry in runner.logs if entry["invocation"] == rid]
    assert warning["fields"] == {"type": "UndeclaredTopic", "code": -32010,
                                 "message": "topic 'undeclared' is not in this step's emits"}


async def test_streams_can_access_and_authenticate(runner: Any) -> None:
    api = STEPS / "todos_api.step.rb"
    await load(runner, api)
    result = await invoke(runner, api, "api", api_input({"group": "g1", "title": "Milk"}))
    item = {"title": "Milk", "id": "first"}
    assert result["body"] == {"item": item, "again": item, "all": [item]}
    sent = [params for method, params in runner.host.calls if method == "streams.send"]
    assert sent[0]["channel"] == {"groupId": "g1"} and sent[0]["stream"] == "todos"
    assert sent[0]["event"] == {"type": "created", "data": {"id": "first"}}

    stream = STEPS / "todos.stream.rb"
    await load(runner, stream, "stream")
    allowed = {"subscription": {"groupId": "u1", "id": "x"}, "authContext": {"userId": "u1"}}
    assert await invoke(runner, stream, "canAccess", allowed) is True
    denied = {"subscription": {"groupId": "u2"}, "authContext": {"userId": "u1"}}
    assert await invoke(runner, stream, "canAccess", denied) is False
    rooms = STEPS / "rooms.stream.rb"
    assert await load(runner, rooms, "stream") == {
        "config": {"name": "rooms", "schema": {"type": "object"}}, "handler": False, "middleware": 0,
        "canAccess": True}
    member = {"subscription": {"groupId": "r1"}, "authContext": {"rooms": ["r1"]}}
    assert await invoke(runner, rooms, "canAccess", member) is True

    auth = FIXTURES / "stream_auth.rb"
    await load(runner, auth, "auth")
    request = {"headers": {"authorization": "Bearer u1"}, "url": "ws://localhost/?x=1"}
    assert await invoke(runner, auth, "authenticate", request) == {"userId": "u1", "url": "ws://localhost/?x=1"}
    with pytest.raises(RunnerError) as err:
        await invoke(runner, auth, "authenticate", {"headers": {}, "url": "/"})
    assert err.value.code == -32000 and str(err.value) == "no token"


async def test_protocol_errors(runner: Any) -> None:
    with pytest.raises(RunnerError) as unknown:
        await runner.request("frobnicate", {})
    assert unknown.value.code == -32601
    with pytest.raises(RunnerError) as not_loaded:
        await invoke(runner, STEPS / "nowhere_step.rb", "event", {})
    assert not_loaded.value.code == -32003
    await load(runner, STEPS / "todos.stream.rb", "stream")
    with pytest.raises(RunnerError) as wrong_trigger:
        await invoke(runner, STEPS / "todos.stream.rb", "event", {})
    assert wrong_trigger.value.code == -32602
    await load(runner, STEPS / "graph_noop.step.rb")
    with pytest.raises(RunnerError) as no_handler:
        await invoke(runner, STEPS / "graph_noop.step.rb", "event", {})
    assert no_handler.value.code == -32602 and "no handler" in str(no_handler.value)
    with pytest.raises(RunnerError) as missing_file:
        await load(runner, STEPS / "missing_step.rb")
    assert missing_file.value.code == -32001 and missing_file.value.data["type"] == "ENOENT"
    runner.send({"jsonrpc": "2.0", "method": "someNotification", "params": {}})
    runner.proc.stdin.write(b"this is not json\n")
    assert await runner.request("ping", {}) == "pong"
    assert "unparseable" in "".join(runner.stderr)


async def test_shutdown_answers_null_and_exits_zero() -> None:
    client = await start_runner()
    path = STEPS / "sleepy_step.rb"
    await load(client, path)
    _, running = client.request_nowait("invoke", invoke_params(path, "event", {"seconds": 30}))
    await asyncio.sleep(0.1)
    assert await client.request("shutdown", {}) is None
    with pytest.raises(RunnerError) as err:
        await running
    assert err.value.code == -32002
    assert await asyncio.wait_for(client.proc.wait(), 5) == 0
    await client.close()


async def test_eof_on_stdin_exits_zero() -> None:
    client = await start_runner()
    client.proc.stdin.close()
    assert await asyncio.wait_for(client.proc.wait(), 5) == 0
    await client.close()
