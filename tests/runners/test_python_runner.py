"""The Python runner (runners/python) against protocol v1, as a real process driven by RunnerClient."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
RUNNER = REPO / "runners" / "python" / "runner.py"
PROJECT = Path(__file__).resolve().parent / "fixtures" / "python"

_spec = importlib.util.spec_from_file_location("steppe_protocol_kit_client", REPO / "protocol" / "kit" / "client.py")
assert _spec and _spec.loader
kit = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = kit
_spec.loader.exec_module(kit)
RunnerClient, RunnerError, HostRefusal = kit.RunnerClient, kit.RunnerError, kit.HostRefusal

pytestmark = pytest.mark.timeout(20)


class FakeHost:
    """Answers the runner's host calls with an in-memory state and records every call."""

    def __init__(self) -> None:
        self.state: dict[tuple[str, str], Any] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def methods(self, name: str) -> list[dict[str, Any]]:
        return [params for method, params in self.calls if method == name]

    async def __call__(self, method: str, params: dict[str, Any]) -> Any:
        self.calls.append((method, params))
        if method == "emit":
            if params["event"]["topic"] == "undeclared":
                raise HostRefusal(-32010, "topic 'undeclared' is not in this step's emits", "UndeclaredTopic")
            return None
        key = (params.get("group"), params.get("key"))
        if key == ("slow", "answer"):
            await asyncio.sleep(3)
        if method == "state.set":
            self.state[key] = params["value"]
            return params["value"]
        if method == "state.get":
            return self.state.get(key)
        raise HostRefusal(-32601, f"unexpected host call {method}", "MethodNotFound")


@pytest.fixture
async def start():
    clients: list[Any] = []

    async def _start(on_call: Any = None, root: Path = PROJECT, python_flags: tuple[str, ...] = ()) -> Any:
        client = RunnerClient([sys.executable, *python_flags, str(RUNNER)], cwd=str(root), on_call=on_call)
        await client.start()
        clients.append(client)
        client.info = await client.request(
            "initialize", {"protocolVersion": 1, "projectRoot": str(root), "host": "steppe/test"})
        return client

    yield _start
    for client in clients:
        assert await client.close() == 0
        assert client.garbage == [], "the runner wrote something that is not protocol to stdout"


def api(body: Any = None, headers: dict[str, str] | None = None, path_params: dict[str, str] | None = None,
        query: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"body": body, "headers": headers or {}, "pathParams": path_params or {},
            "queryParams": query or {}, "rawBody": ""}


def invoke_params(file: str, trigger: str, data: Any, root: Path = PROJECT) -> dict[str, Any]:
    return {"path": str(root / file), "step": Path(file).stem, "trigger": trigger, "input": data,
            "traceId": "t-1", "flows": ["orders"]}


async def load(client: Any, file: str, kind: str = "step", root: Path = PROJECT) -> dict[str, Any]:
    return await client.request("load", {"path": str(root / file), "kind": kind})


async def invoke(client: Any, file: str, trigger: str, data: Any, root: Path = PROJECT) -> Any:
    return await client.request("invoke", invoke_params(file, trigger, data, root))


async def test_handshake_and_basic_methods(start):
    client = await start()
    assert client.info == {"protocolVersion": 1, "language": "python", "runnerVersion": "0.1.0",
                           "pid": client.proc.pid}
    assert await client.request("ping", {}) == "pong"
    with pytest.raises(RunnerError) as e:
        await client.request("frobnicate", {})
    assert e.value.code == -32601
    with pytest.raises(RunnerError) as e:
        await invoke(client, "steps/never_loaded_step.py", "event", {})
    assert e.value.code == -32003
    with pytest.raises(RunnerError) as e:
        await client.request("initialize", {"protocolVersion": 99, "projectRoot": str(PROJECT), "host": "x"})
    assert e.value.code == -32004
    client.notify("cancel", {"id": 12345})  # unknown ids are ignored
    client.notify("whatever", {})  # so are unknown notifications
    assert await client.request("ping", {}) == "pong"


async def test_load_every_kind(start):
    client = await start()
    hello = await load(client, "steps/hello_step.py")
    assert hello == {"config": {"type": "api", "name": "Hello", "path": "/hello/:name", "method": "GET",
                                "emits": []}, "handler": True, "middleware": 2, "canAccess": False}
    event = await load(client, "steps/orders/create_order_step.py")
    assert event["config"]["subscribes"] == ["order.requested"] and event["handler"] is True
    cron = await load(client, "steps/cron_tick_step.py")
    assert cron["config"]["cron"] == "*/5 * * * *" and cron["middleware"] == 0
    noop = await load(client, "steps/graph_noop_step.py")
    assert noop["handler"] is False and noop["config"]["virtualEmits"] == ["review.done"]

    todo = await load(client, "steps/todo_stream.py", "stream")
    assert todo["canAccess"] is True and todo["handler"] is False
    assert todo["config"]["name"] == "todo"
    assert set(todo["config"]["schema"]["properties"]) == {"id", "title", "done"}
    notes = await load(client, "steps/notes.stream.py", "stream")
    assert notes == {"config": {"name": "notes", "schema": {"type": "object"}}, "handler": False,
                     "middleware": 0, "canAccess": True}
    plain = await load(client, "steps/plain.stream.py", "stream")
    assert plain["canAccess"] is False

    auth = await load(client, "auth/stream_auth.py", "auth")
    assert auth["config"] == {}


async def test_pydantic_models_become_json_schema(start):
    from pydantic import BaseModel

    class Body(BaseModel):
        name: str
        count: int = 1

    class Reply(BaseModel):
        greeting: str

    client = await start()
    loaded = await load(client, "steps/schema.step.py")
    config = loaded["config"]
    assert config["bodySchema"] == Body.model_json_schema()
    assert config["responseSchema"] == {"200": Reply.model_json_schema()}
    assert "extra" not in config  # a function in the config is dropped
    reply = await invoke(client, "steps/schema.step.py", "api", api({"name": "ada", "count": 2}))
    assert reply == {"status": 201, "body": {"greeting": "hi ada x2"}, "headers": {}}


async def test_event_with_relative_imports_and_state(start):
    host = FakeHost()
    client = await start(host)
    await load(client, "steps/orders/create_order_step.py")
    rid, fut = client.request_nowait("invoke", invoke_params("steps/orders/create_order_step.py", "event",
                                                             {"id": "a1", "qty": 2}))
    assert await asyncio.wait_for(fut, 5) is None
    assert host.methods("state.set") == [
        {"invocation": rid, "group": "t-1", "key": "order", "value": {"id": "a1", "qty": 2}}]
    [emit] = host.methods("emit")
    assert emit["invocation"] == rid
    assert emit["event"] == {"topic": "order.created", "data": {
        "shout": "lib:A1", "absolute": "lib:X", "greeting": "hello from the project root",
        "stored": {"id": "a1", "qty": 2}, "seen": 1, "module": "python.steps.orders.create_order_step",
        "flows": ["orders"]}}
    assert {"invocation": rid, "level": "info", "msg": "order created", "fields": {"id": "a1"},
            "source": "logger"} in client.logs

    # a directory name that is not an identifier still makes a package, with its siblings importable
    await load(client, "steps/my-things/dash_step.py")
    dash = await invoke(client, "steps/my-things/dash_step.py", "api", api())
    assert dash["body"] == {"value": 42, "module": "python.steps.my_things.dash_step"}


async def test_api_middleware_pass_through_and_short_circuit(start):
    client = await start()
    await load(client, "steps/hello_step.py")
    rid, fut = client.request_nowait("invoke", invoke_params(
        "steps/hello_step.py", "api", api(path_params={"name": "ada"}, query={"tag": ["a", "b"]})))
    reply = await asyncio.wait_for(fut, 5)
    assert reply == {"status": 200, "headers": {"content-type": "application/json", "x-tag": "inner"},
                     "body": {"hello": "ada", "tagged": True, "query": {"tag": ["a", "b"]}}}
    assert {"invocation": rid, "level": "info", "msg": "handling ada", "fields": {}, "source": "stdout"} in client.logs

    rid, fut = client.request_nowait("invoke", invoke_params(
        "steps/hello_step.py", "api", api(headers={"x-block": "1"}, path_params={"name": "eve"})))
    assert await asyncio.wait_for(fut, 5) == {"status": 401, "body": {"error": "blocked"}, "headers": {}}
    assert not [log for log in client.logs if log["invocation"] == rid], "the handler must not have run"


async def test_sync_handler_makes_blocking_state_calls(start):
    host = FakeHost()
    client = await start(host)
    await load(client, "steps/sync_counter_step.py")
    rid, fut = client.request_nowait("invoke", invoke_params("steps/sync_counter_step.py", "api", api()))
    assert await asyncio.wait_for(fut, 5) == {"status": 200, "body": {"n": 1, "in_thread": True}, "headers": {}}
    assert (await invoke(client, "steps/sync_counter_step.py", "api", api()))["body"]["n"] == 2
    assert [p["invocation"] for p in host.methods("state.get")][0] == rid
    assert {"invocation": rid, "level": "info", "msg": "counting in a thread", "fields": {},
            "source": "stdout"} in client.logs


async def test_handler_error_has_user_stack_and_runner_stays_up(start):
    client = await start()
    await load(client, "steps/boom_step.py")
    with pytest.raises(RunnerError) as e:
        await invoke(client, "steps/boom_step.py", "api", api(body=5))
    err = e.value
    assert err.code == -32000
    assert err.error["message"] == "boom: bad input 5"
    assert err.data["type"] == "ValueError"
    stack = err.data["stack"]
    assert stack.startswith("Traceback") and stack.endswith("ValueError: boom: bad input 5")
    assert "boom_step.py" in stack and "in check" in stack and "in handler" in stack
    assert "steppe_runner" not in stack and "asyncio" not in stack
    assert await client.request("ping", {}) == "pong"
    await load(client, "steps/sleepy_step.py")
    assert (await invoke(client, "steps/sleepy_step.py", "api", api({"seconds": 0})))["status"] == 200


async def test_broken_files_answer_load_errors(start, tmp_path):
    client = await start()
    broken = tmp_path / "broken_step.py"
    broken.write_text('config = {"type": "event"}\n\n\nasync def handler(input, context)\n    pass\n')
    with pytest.raises(RunnerError) as e:
        await client.request("load", {"path": str(broken), "kind": "step"})
    assert e.value.code == -32001 and e.value.data["type"] == "SyntaxError"
    assert str(broken) in e.value.error["message"] and "line 4" in e.value.error["message"]

    with pytest.raises(RunnerError) as e:
        await load(client, "broken/fails_at_import_step.py")
    assert e.value.code == -32001 and e.value.data["type"] == "RuntimeError"
    assert e.value.error["message"] == "the database is not reachable at import time"
    stack = e.value.data["stack"]
    assert "fails_at_import_step.py" in stack and "explode.py" in stack
    assert "steppe_runner" not in stack and "<frozen" not in stack

    with pytest.raises(RunnerError) as e:
        await load(client, "broken/bad_config_step.py")
    assert e.value.code == -32001 and "config.emits[0].label" in e.value.error["message"]

    with pytest.raises(RunnerError) as e:
        await load(client, "broken/no_config_step.py")
    assert e.value.code == -32001 and "config" in e.value.error["message"]

    assert await client.request("ping", {}) == "pong"


async def test_print_becomes_log_notifications(start):
    client = await start()
    await load(client, "steps/printer_step.py")
    assert {"invocation": None, "level": "info", "msg": "printed at import", "fields": {},
            "source": "stdout"} in client.logs
    rid, fut = client.request_nowait("invoke", invoke_params("steps/printer_step.py", "event", {}))
    assert await asyncio.wait_for(fut, 5) is None
    mine = [(log["source"], log["level"], log["msg"]) for log in client.logs if log["invocation"] == rid]
    assert mine == [("stdout", "info", "first line"), ("stdout", "info", "second line"),
                    ("stderr", "warn", "to stderr"), ("stdout", "info", "through the buffer"),
                    ("stdout", "info", "no newline at the end")]
    # a write to fd 1 itself lands on the real stderr, not in the protocol stream
    deadline = time.monotonic() + 2
    while not any("raw write to fd 1" in line for line in client.stderr) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert any("raw write to fd 1" in line for line in client.stderr)


async def test_fifty_invocations_run_concurrently_and_ping_stays_fast(start):
    client = await start()
    await load(client, "steps/sleepy_step.py")
    began = time.monotonic()
    futures = [client.request_nowait("invoke", invoke_params("steps/sleepy_step.py", "api",
                                                             api({"seconds": 0.4, "n": i})))[1]
               for i in range(50)]
    ping_started = time.monotonic()
    assert await client.request("ping", {}) == "pong"
    assert time.monotonic() - ping_started < 0.2
    replies = await asyncio.wait_for(asyncio.gather(*futures), 5)
    elapsed = time.monotonic() - began
    assert sorted(r["body"]["n"] for r in replies) == list(range(50))
    assert elapsed < 1.2, f"50 sleeps of 0.4 s took {elapsed:.2f} s"


async def test_cancel_async_and_sync_handlers(start):
    host = FakeHost()
    client = await start(host)
    await load(client, "steps/sleepy_step.py")
    rid, fut = client.request_nowait("invoke", invoke_params("steps/sleepy_step.py", "api", api({"seconds": 5})))
    await asyncio.sleep(0.05)
    began = time.monotonic()
    client.notify("cancel", {"id": rid})
    with pytest.raises(RunnerError) as e:
        await asyncio.wait_for(fut, 2)
    assert e.value.code == -32002 and time.monotonic() - began < 0.5

    # a plain def handler is stopped inside its thread: it never reaches its state call
    await load(client, "steps/sync_sleepy_step.py")
    rid, fut = client.request_nowait("invoke", invoke_params("steps/sync_sleepy_step.py", "event", {"seconds": 0.4}))
    await asyncio.sleep(0.1)
    client.notify("cancel", {"id": rid})
    with pytest.raises(RunnerError) as e:
        await asyncio.wait_for(fut, 2)
    assert e.value.code == -32002
    await asyncio.sleep(0.6)
    assert host.methods("state.set") == []
    client.notify("cancel", {"id": rid})  # already finished: ignored

    # a plain def handler blocked on a host call is woken up by the cancel
    await load(client, "steps/sync_waiter_step.py")
    rid, fut = client.request_nowait("invoke", invoke_params("steps/sync_waiter_step.py", "event", {}))
    while not host.methods("state.get"):
        await asyncio.sleep(0.01)
    client.notify("cancel", {"id": rid})
    with pytest.raises(RunnerError) as e:
        await asyncio.wait_for(fut, 2)
    assert e.value.code == -32002
    deadline = time.monotonic() + 1
    while not [log for log in client.logs if log["invocation"] == rid] and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    [woke] = [log["msg"] for log in client.logs if log["invocation"] == rid]
    assert woke.startswith("woke up with ")
    await load(client, "steps/sync_counter_step.py")
    assert (await invoke(client, "steps/sync_counter_step.py", "api", api()))["body"]["n"] == 1


async def test_unserialisable_emit_raises_in_handler(start):
    host = FakeHost()
    client = await start(host)
    await load(client, "steps/emits_step.py")
    reply = await invoke(client, "steps/emits_step.py", "api", api(query={"mode": "unserialisable"}))
    assert reply["body"]["type"] == "TypeError"
    assert reply["body"]["error"].startswith("emit data is not JSON-serialisable: ")
    assert host.methods("emit") == []


async def test_host_refusal_becomes_exception(start):
    client = await start(FakeHost())
    await load(client, "steps/emits_step.py")
    reply = await invoke(client, "steps/emits_step.py", "api", api(query={"mode": "refused"}))
    assert reply["body"] == {"type": "UndeclaredTopic", "code": -32010, "cls": "UndeclaredTopic",
                             "message": "topic 'undeclared' is not in this step's emits"}
    with pytest.raises(RunnerError) as e:
        await invoke(client, "steps/emits_step.py", "api", api(query={"mode": "uncaught"}))
    assert e.value.code == -32000 and e.value.data["type"] == "UndeclaredTopic"
    assert "emits_step.py" in e.value.data["stack"]


async def test_response_bodies_binary_and_text(start):
    client = await start()
    await load(client, "steps/emits_step.py")
    binary = await invoke(client, "steps/emits_step.py", "api", api(query={"mode": "binary"}))
    assert binary == {"status": 200, "bodyBase64": "AAFiaW5hcnk=",
                      "headers": {"content-type": "application/octet-stream"}}
    text = await invoke(client, "steps/emits_step.py", "api", api())
    assert text == {"status": 200, "body": "plain text", "headers": {}}


async def test_cron_can_access_and_authenticate(start):
    host = FakeHost()
    client = await start(host)
    await load(client, "steps/cron_tick_step.py")
    assert await invoke(client, "steps/cron_tick_step.py", "cron", None) is None
    assert host.methods("emit")[0]["event"] == {"topic": "tick", "data": {"trace": "t-1"}}

    await load(client, "steps/todo_stream.py", "stream")
    sub = {"subscription": {"groupId": "ada", "id": "1"}, "authContext": {"user": "ada"}}
    assert await invoke(client, "steps/todo_stream.py", "canAccess", sub) is True
    sub["authContext"] = {"user": "eve"}
    assert await invoke(client, "steps/todo_stream.py", "canAccess", sub) is False
    await load(client, "steps/notes.stream.py", "stream")
    admin = {"subscription": {"groupId": "g"}, "authContext": {"role": "admin"}}
    assert await invoke(client, "steps/notes.stream.py", "canAccess", admin) is True

    await load(client, "auth/stream_auth.py", "auth")
    request = {"headers": {"authorization": "tok"}, "url": "/ws?x=1"}
    assert await invoke(client, "auth/stream_auth.py", "authenticate", request) == {"user": "tok", "url": "/ws?x=1"}
    with pytest.raises(RunnerError) as e:
        await invoke(client, "auth/stream_auth.py", "authenticate", {"headers": {}, "url": "/ws"})
    assert e.value.code == -32000 and e.value.data["type"] == "PermissionError"


async def test_second_load_reimports_fresh(start, tmp_path):
    project = tmp_path / "my-app"
    (project / "steps").mkdir(parents=True)
    step = project / "steps" / "greet.step.py"
    source = ('config = {{"type": "api", "name": "{name}", "path": "/g", "method": "GET", "emits": []}}\n'
              'async def handler(req, context):\n    return {{"status": 200, "body": ["{name}", __name__]}}\n')
    step.write_text(source.format(name="One"))
    client = await start(root=project)
    assert (await load(client, "steps/greet.step.py", root=project))["config"]["name"] == "One"
    step.write_text(source.format(name="Two"))  # same size, same second: must not come from a cache
    assert (await load(client, "steps/greet.step.py", root=project))["config"]["name"] == "Two"
    reply = await invoke(client, "steps/greet.step.py", "api", api(), root=project)
    assert reply["body"] == ["Two", "my_app.steps.greet_step"]


async def test_shutdown_cancels_running_work_and_exits_zero(start):
    client = await start()
    await load(client, "steps/sleepy_step.py")
    _, running = client.request_nowait("invoke", invoke_params("steps/sleepy_step.py", "api", api({"seconds": 5})))
    assert await client.request("shutdown", {}) is None
    with pytest.raises(RunnerError) as e:
        await asyncio.wait_for(running, 2)
    assert e.value.code == -32002
    assert await asyncio.wait_for(client.proc.wait(), 2) == 0


async def test_eof_on_stdin_exits_zero(start):
    client = await start()
    client.proc.stdin.close()
    assert await asyncio.wait_for(client.proc.wait(), 2) == 0


async def test_works_with_the_stdlib_alone(start):
    # -S skips site-packages: no orjson, no pydantic; the json fallback must behave the same
    host = FakeHost()
    client = await start(host, python_flags=("-S",))
    await load(client, "steps/orders/create_order_step.py")
    assert await invoke(client, "steps/orders/create_order_step.py", "event", {"id": "b2"}) is None
    assert host.methods("emit")[0]["event"]["data"]["shout"] == "lib:B2"
    await load(client, "steps/emits_step.py")
    reply = await invoke(client, "steps/emits_step.py", "api", api(query={"mode": "unserialisable"}))
    assert reply["body"]["error"].startswith("emit data is not JSON-serialisable: ")
    with pytest.raises(RunnerError) as e:
        await load(client, "steps/schema.step.py")
    assert e.value.code == -32001 and e.value.data["type"] == "ModuleNotFoundError"
