"""Messages a newcomer tripped on (issue 11 part 9), against one real dev host: schema failures and bad JSON
in plain words, the OpenAPI statuses, console.error at ERROR, control bytes from handlers shown escaped,
tracebacks printed as a terminal shows them, and one id for a dead letter in the log and in `steppe dlq`."""

from __future__ import annotations

import re

import httpx
import pytest

from conftest import wait_until, write_project

ORDERS = """
config = {"type": "api", "name": "CreateOrder", "path": "/orders", "method": "POST", "emits": [],
          "bodySchema": {"type": "object", "required": ["item", "qty"],
                         "properties": {"item": {"type": "string", "minLength": 1},
                                        "qty": {"type": "integer", "exclusiveMinimum": 0},
                                        "size": {"enum": ["S", "M"]}}}}
async def handler(req, context):
    return {"status": 201, "body": req["body"]}
"""
LOOKUP = """
config = {"type": "api", "name": "GetOrder", "path": "/orders/:id", "method": "GET", "emits": ["noted"]}
async def handler(req, context):
    if req["pathParams"]["id"] == "crash":
        raise ValueError("no such order")
    if req["pathParams"]["id"] == "noisy":
        print("\\x1b[2J\\x1b]0;pwned\\x07cleared the screen")
    return {"status": 404, "body": {"error": "not found"}}
"""
SHOUTY = """
export const config = { type: 'api', name: 'Shouty', path: '/shout', method: 'GET', emits: [] }
export const handler = async () => {
  console.error('something broke in shout')
  console.warn('a warning from shout')
  return { status: 200, body: 'ok' }
}
"""
FLAKY = """
config = {"type": "event", "name": "Flaky", "subscribes": ["job"], "emits": [],
          "infrastructure": {"queue": {"maxRetries": 1}}}
async def handler(data, context):
    if data.get("fail"):
        raise RuntimeError("job failed")
"""


@pytest.fixture(scope="module")
def host(tmp_path_factory, request):
    from conftest import RunningHost

    root = write_project(tmp_path_factory.mktemp("newcomer"), {
        "steps/orders_step.py": ORDERS, "steps/lookup_step.py": LOOKUP, "steps/shout.step.ts": SHOUTY,
        "steps/flaky_step.py": FLAKY})
    running = RunningHost(root, [], {"STEPPE_RETRY_BASE": "0.01"}).wait_ready()
    yield running
    running.stop()


def test_schema_failures_say_what_was_expected(host):
    r = httpx.post(f"{host.url}/orders", json={"item": "tea", "qty": 0})
    assert r.status_code == 400
    assert r.json()["errors"] == [{"path": "/qty", "message": "expected a number greater than 0, got 0"}]
    r = httpx.post(f"{host.url}/orders", json={"item": "", "qty": "2", "size": "XL"})
    assert r.json()["errors"] == [
        {"path": "/item", "message": "expected at least 1 character, got 0"},
        {"path": "/qty", "message": "expected an integer, got a string ('2')"},
        {"path": "/size", "message": "expected one of 'S', 'M', got 'XL'"}]
    r = httpx.post(f"{host.url}/orders", json={"item": "tea"})
    assert r.json()["errors"] == [{"path": "/", "message": "missing the required field 'qty'"}]


def test_a_body_that_is_not_json_says_so(host):
    r = httpx.post(f"{host.url}/orders", content=b"notjson", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "Invalid JSON body"
    reason = r.json()["reason"]
    assert reason.startswith("the body is not valid JSON (it breaks at line 1, column ") and "literal" not in reason


def test_openapi_lists_the_handlers_404_and_promises_bodyschema_400s_only_where_there_is_one(host):
    paths = httpx.get(f"{host.url}/openapi.json").json()["paths"]
    lookup, orders = paths["/orders/{id}"]["get"]["responses"], paths["/orders"]["post"]["responses"]
    assert "the handler answered 404" in lookup["404"]["description"]
    assert "bodySchema (errors listed)" in orders["400"]["description"]
    assert "no bodySchema, so its fields are not checked" in lookup["400"]["description"]
    assert httpx.get(f"{host.url}/orders/42").status_code == 404


def test_console_error_logs_at_error_and_console_warn_at_warn(host):
    assert httpx.get(f"{host.url}/shout").status_code == 200
    def shouty() -> list[dict]:
        return [r for r in httpx.get(f"{host.url}/__steppe/logs").json() if r.get("step") == "Shouty"]
    wait_until(lambda: len(shouty()) >= 2, 10, "Shouty's two log records")
    records = shouty()
    levels = {r["msg"]: r["level"] for r in records}
    assert levels == {"something broke in shout": "error", "a warning from shout": "warn"}
    assert "ERROR [Shouty] something broke in shout" in host.logs()


def test_control_bytes_from_a_handler_never_reach_the_terminal(host):
    assert httpx.get(f"{host.url}/orders/noisy").status_code == 404
    text = host.wait_log("cleared the screen")
    line = next(ln for ln in text.splitlines() if "cleared the screen" in ln)
    assert r"[GetOrder] \x1b[2J\x1b]0;pwned\x07cleared the screen" in line
    assert "\x1b" not in text and "\x07" not in text


def test_dev_tracebacks_print_as_a_terminal_shows_them(host):
    assert httpx.get(f"{host.url}/orders/crash").status_code == 500
    text = host.wait_log("handler failed: ValueError: no such order")
    at = text.index("handler failed: ValueError: no such order")
    block = text[at:].splitlines()[1:4]
    assert block[0].strip() == "Traceback (most recent call last):", text[at:]
    assert all(ln.startswith("    ") for ln in block) and "\\n" not in text[at:].splitlines()[0]


def test_a_dead_letter_has_one_id_in_the_log_and_in_the_dlq(host):
    for n in range(3):  # deliveries that succeed first, so the dead one's delivery id is not 1
        assert host.admin_post("/__steppe/emit", json={"topic": "job", "data": {"n": n}}).status_code < 300
    assert host.admin_post("/__steppe/emit", json={"topic": "job", "data": {"fail": True}}).status_code < 300
    text = host.wait_log("moved to the dead-letter store")
    logged = int(re.search(r"delivery (\d+) of event 'job' moved to the dead-letter store", text).group(1))
    assert logged > 1 and f"`steppe dlq show {logged}`" in text
    listed = host.admin_get("/__steppe/dlq").json()
    letters = listed["deadLetters"] if isinstance(listed, dict) else listed
    assert [d["id"] for d in letters] == [logged]
    assert host.admin_get(f"/__steppe/dlq/{logged}").status_code == 200


TODOS_STREAM = """
config = {"name": "todos", "schema": {"type": "object"}, "baseConfig": {"storageType": "default"}}
"""
ADD_TODO = """
config = {"type": "api", "name": "AddTodo", "path": "/todos", "method": "POST", "emits": []}
async def handler(req, context):
    item = await context.streams.todos.set("inbox", "t1", {"title": req["body"]["title"]})
    return {"status": 201, "body": item}
"""


async def test_the_clients_doc_test_example_runs_as_written(tmp_path, start_host):
    """docs/clients.md's StreamClient test example, taken from the page and run against a real host."""
    from conftest import REPO
    from steppe.stream_client import StreamClient

    page = (REPO / "docs" / "clients.md").read_text()
    example = re.search(r"```python\nhost = tester.*?\n(.*?)```", page, re.S).group(1)
    root = write_project(tmp_path, {"steps/todos_stream.py": TODOS_STREAM, "steps/add_todo_step.py": ADD_TODO})
    host = start_host(root, wait=False)
    await host.ready()
    body = "async def example(host):\n" + "".join(f"    {line}\n" for line in example.splitlines())
    scope = {"StreamClient": StreamClient, "httpx": httpx}
    exec(compile(body, "docs/clients.md", "exec"), scope)
    await scope["example"](host)
