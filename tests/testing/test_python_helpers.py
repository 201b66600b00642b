"""steppe.testing: the mock context against a handler, and HostTester against a real host (Node + Python)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import httpx
import psutil
import pytest

from conftest import RunningHost, free_port, wait_until, write_project
from steppe.testing import HostError, HostTester, MockContext, host_fixture, load_step

ORDERS = Path(__file__).parent / "orders"
tester = host_fixture(ORDERS)


def _store_order_handler():  # noqa: ANN202
    return load_step(ORDERS / "steps" / "store_order_step.py").handler


async def test_mock_context_records_emits_state_and_logs() -> None:
    ctx = MockContext(topic="order.placed")
    await _store_order_handler()({"id": "o-1", "item": "tea", "qty": 1}, ctx)
    assert ctx.emitted == [{"topic": "order.stored", "data": {"id": "o-1"}}]
    assert ctx.topics() == ["order.stored"]
    assert ctx.state.data == {"orders": {"o-1": {"id": "o-1", "item": "tea", "qty": 1, "stored": True}}}
    assert [name for name, _ in ctx.calls] == ["state.set", "emit"]
    assert ctx.logger.records == [("info", "order stored", {"id": "o-1"})]
    assert ctx.topic == "order.placed" and ctx.traceId == ctx.trace_id


async def test_mock_context_refuses_what_a_real_run_refuses(tmp_path: Path) -> None:
    """Seen: a unit test with MockContext passed for a handler that emitted a topic missing from its
    config.emits, a set of ids as state and `messageGroupId: ["a"]`; in a real run each of these raised in
    the handler (UndeclaredTopic, TypeError, InvalidParams)."""
    (tmp_path / "steps").mkdir()
    (tmp_path / "steps" / "ship_step.py").write_text(
        'config = {"type": "event", "name": "Ship", "subscribes": ["order.stored"], "emits": ["order.shipped"]}\n'
        'async def handler(data, context):\n'
        '    await context.emit({"topic": "order.sent", "data": data})\n')
    step = load_step(tmp_path / "steps" / "ship_step.py")
    ctx = MockContext(config=step.config)
    with pytest.raises(HostError) as refused:
        await step.handler({"id": 1}, ctx)
    assert type(refused.value).__name__ == refused.value.type == "UndeclaredTopic"
    assert "emitted topic 'order.sent', which is not in its config.emits ['order.shipped']" in str(refused.value)
    with pytest.raises(HostError) as refused:
        await ctx.emit({"topic": "order.shipped", "data": 1, "messageGroupId": ["a"]})
    assert refused.value.type == "InvalidParams" and "messageGroupId must be a string" in str(refused.value)
    assert ctx.emitted == []  # refused emits were not sent
    with pytest.raises(TypeError):
        ctx.state.set("g", "ids", {1, 2})  # raises at the call, before any await, as in the runner
    with pytest.raises(TypeError):
        ctx.emit({"topic": "order.shipped", "data": object()})
    # what is kept is what the host would keep: JSON
    await ctx.state.set("g", "pair", (1, 2))
    await ctx.emit({"topic": "order.shipped", "data": {"when": __import__("datetime").date(2026, 11, 29)}})
    assert ctx.state.data == {"g": {"pair": [1, 2]}}
    assert ctx.emitted == [{"topic": "order.shipped", "data": {"when": "2026-11-29"}}]
    sync = MockContext(asynchronous=False, config={"name": "S", "emits": [{"topic": "a", "label": "A"}]})
    sync.emit({"topic": "a", "data": None})
    with pytest.raises(HostError):
        sync.emit({"topic": "b"})


async def test_mock_state_update_applies_the_hosts_ops() -> None:
    """Seen: `ctx.state.update` raised AttributeError in a unit test, though steps.md documents it as state's
    atomic update; the mock applies the host's own ops (steppe.state.ops)."""
    ctx = MockContext(state={"carts": {"c1": {"status": "open", "items": []}}})
    assert await ctx.state.update("hits", "home", [{"op": "increment"}]) == 1
    assert await ctx.state.update("hits", "home", [{"op": "increment", "by": 2}]) == 3
    cart = await ctx.state.update("carts", "c1", [{"op": "expect", "path": "status", "value": "open"},
                                                  {"op": "append", "path": "items", "value": {"sku": "tea"}}])
    assert cart == {"status": "open", "items": [{"sku": "tea"}]} == ctx.state.data["carts"]["c1"]
    with pytest.raises(HostError) as refused:
        await ctx.state.update("carts", "c1", [{"op": "expect", "path": "status", "value": "paid"}])
    assert refused.value.type == "StateConflict"
    with pytest.raises(HostError) as refused:
        await ctx.state.update("hits", "home", [{"op": "explode"}])
    assert refused.value.type == "InvalidParams" and str(refused.value).startswith("state.update: ")
    assert ctx.state.data["hits"]["home"] == 3  # refused updates changed nothing
    assert [args[:2] for name, args in ctx.calls if name == "state.update"] == [
        ("hits", "home"), ("hits", "home"), ("carts", "c1"), ("carts", "c1"), ("hits", "home")]
    assert MockContext(asynchronous=False).state.update("n", "k", [{"op": "set", "value": 5}]) == 5


def test_mock_context_for_plain_def_handlers_returns_values() -> None:
    ctx = MockContext(asynchronous=False, state={"g": {"k": 1}})
    assert ctx.state.get("g", "k") == 1
    ctx.streams.todos.set("inbox", "a", {"title": "x"})
    assert ctx.streams["todos"].get_group("inbox") == [{"title": "x", "id": "a"}]
    ctx.streams.todos.send({"groupId": "inbox"}, {"type": "ping", "data": 1})
    assert ctx.streams.todos.sent == [({"groupId": "inbox"}, {"type": "ping", "data": 1})]
    with pytest.raises(TypeError):
        ctx.emit("not an event")  # type: ignore[arg-type]


def test_call_api_then_emitted_events_then_state(tester: HostTester) -> None:
    r = tester.call_api("/orders", {"item": "tea", "qty": 2})
    assert r.status_code == 202 and r.json() == {"id": "o-tea-2"}
    tester.wait_idle()
    events = tester.emitted_events(trace_id=r.headers["x-trace-id"])
    assert [(e["topic"], e["emittedBy"]) for e in events] == [("order.placed", "PlaceOrder"),
                                                               ("order.stored", "StoreOrder")]
    assert events[0]["data"] == {"id": "o-tea-2", "item": "tea", "qty": 2}
    assert tester.get_state("orders", "o-tea-2") == {"id": "o-tea-2", "item": "tea", "qty": 2, "stored": True}
    assert tester.get_state("orders", "nothing-here") is None
    assert {"id": "o-tea-2", "item": "tea", "qty": 2, "stored": True} in tester.get_state("orders")
    assert any(r["msg"] == "order stored" for r in tester.logs(step="StoreOrder"))


def test_emit_reaches_subscribers_and_wait_idle_waits_for_them(tester: HostTester) -> None:
    for n in range(5):
        tester.emit("order.placed", {"id": f"e-{n}", "item": "cake", "qty": 1})
    tester.wait_idle()  # both hops of all five events have run once this returns
    assert all(tester.get_state("counted", f"e-{n}") is True for n in range(5))
    assert {f"e-{n}" for n in range(5)} <= {e["data"]["id"] for e in tester.emitted_events("order.stored")}


def test_wait_idle_waits_for_a_handler_still_running(tester: HostTester) -> None:
    # seen: wait_idle read an in-flight count the host no longer sends, so a running API call counted as idle
    call = threading.Thread(target=tester.call_api, args=("/reports/r1", {}), daemon=True)
    call.start()
    wait_until(lambda: tester.logs(step="SlowReport"), 10, "the slow handler started")
    tester.wait_idle()
    assert tester.get_state("reports", "r1") == "done"
    call.join(5)


def test_bad_api_input_is_a_400_not_a_crash(tester: HostTester) -> None:
    assert tester.call_api("/orders", {"item": "tea", "qty": 0}).status_code == 400
    assert tester.call_api("/nowhere").status_code == 404


def test_a_project_that_cannot_start_says_why(tmp_path: Path) -> None:
    (tmp_path / "steppe.toml").write_text("not_a_setting = 1\n")
    with pytest.raises(RuntimeError, match="not_a_setting"):
        HostTester(tmp_path, start_timeout=20).start()


def test_start_mode_keeps_no_emitted_events_unless_asked(tmp_path: Path) -> None:
    """Each kept event holds its data (up to max_event): production keeps none by default."""
    step = (ORDERS / "steps" / "count_orders.step.js").read_text()
    root = write_project(tmp_path, {"steps/count_orders.step.js": step})
    for env, kept in (({}, 0), ({"STEPPE_KEEP_EMITTED": "5"}, 5)):
        port = free_port()
        # the admin token `start` asks for once the admin API has one (issue 8); ignored before
        admin = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"authorization": "Bearer t"})
        host = RunningHost(root, [], {"STEPPE_BUS": "memory", "STEPPE_ADMIN_TOKEN": "t", **env}, mode="start",
                           port=port).wait_ready()
        try:
            for n in range(8):
                assert admin.post("/__steppe/emit", json={"topic": "t", "data": n}).status_code == 202
            assert [e["data"] for e in admin.get("/__steppe/emitted").json()] == list(range(8))[8 - kept:]
        finally:
            host.stop()
            admin.close()


def test_get_stream_reads_stream_items(tmp_path: Path) -> None:
    root = write_project(tmp_path, {
        "steps/todos_stream.py": 'config = {"name": "todos", "schema": {"type": "object"}}\n',
        "steps/add_todo_step.py": """
            config = {"type": "api", "name": "AddTodo", "path": "/todos", "method": "POST", "emits": []}


            async def handler(req, context):
                item = await context.streams.todos.set("inbox", req.body["id"], {"title": req.body["title"]})
                return {"status": 201, "body": item}
        """})
    with HostTester(root) as t:
        assert t.call_api("/todos", {"id": "a", "title": "milk"}).status_code == 201
        assert t.get_stream("todos", "inbox", "a") == {"id": "a", "title": "milk"}
        assert t.get_stream("todos", "inbox") == [{"id": "a", "title": "milk"}]
        assert t.get_stream("todos", "inbox", "zzz") is None
        with pytest.raises(httpx.HTTPStatusError):
            t.get_stream("nosuch", "inbox", "a")


def test_state_and_stream_names_with_slashes_and_url_characters(tmp_path: Path) -> None:
    """Seen: a handler may name a state group `users/7` or a key `a?b#c`; `get_state` sent them unquoted (the
    key was cut at `?`), and the admin route split an encoded slash (`users%2F7`) into group `users`, key `7`,
    so neither tester could read them back. The same for a stream group or id."""
    root = write_project(tmp_path, {
        "steps/notes_stream.py": 'config = {"name": "notes", "schema": {"type": "object"}}\n',
        "steps/put_step.py": """
            config = {"type": "api", "name": "Put", "path": "/put", "method": "POST", "emits": []}


            async def handler(req, context):
                await context.state.set(req.body["group"], req.body["key"], req.body["value"])
                await context.streams.notes.set(req.body["group"], req.body["key"], {"v": req.body["value"]})
                return {"status": 204}
        """})
    names = [("users/7", "a?b#c"), ("users", "7/x"), ("%2F", "100%"), ("ü", " ")]
    with HostTester(root) as t:
        for n, (group, key) in enumerate(names):
            assert t.call_api("/put", {"group": group, "key": key, "value": n}).status_code == 204
        for n, (group, key) in enumerate(names):
            assert t.get_state(group, key) == n, (group, key)
            assert t.get_state(group) == [n], group
            assert t.get_stream("notes", group, key) == {"v": n, "id": key}, (group, key)
            assert t.get_stream("notes", group) == [{"v": n, "id": key}], group
        assert t.get_state("users", "7") is None


def test_a_killed_test_process_leaves_no_host_behind(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(
        "import sys, time\n"
        "from steppe.testing import HostTester\n"
        f"t = HostTester({str(ORDERS)!r}).start()\n"
        "print(t.proc.pid, flush=True)\n"
        "time.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    host_pid = int(parent.stdout.readline())
    parent.kill()  # SIGKILL: no cleanup runs in the test process
    parent.wait()
    wait_until(lambda: not psutil.pid_exists(host_pid) or psutil.Process(host_pid).status() == "zombie", 20,
               "the orphaned host to stop")
