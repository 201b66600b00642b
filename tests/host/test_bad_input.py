"""Every bad-input case of issue 2, against a real host process and real runners."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx

from conftest import write_project

API = '''
config = {{"type": "api", "name": "{name}", "path": "{path}", "method": "POST", "emits": {emits},
          "bodySchema": {{"type": "object", "properties": {{"n": {{"type": "integer"}}}}, "required": ["n"]}}}}

async def handler(req, context):
{body}
'''


def api_step(name: str, path: str, body: str, emits: str = "[]") -> str:
    return API.format(name=name, path=path, emits=emits, body="\n".join("    " + ln for ln in body.splitlines()))


def project(tmp_path):
    return write_project(tmp_path, {
        "steps/ok_step.py": api_step("Ok", "/ok", 'return {"status": 200, "body": {"n": req["body"]["n"], '
                                     '"pid": __import__("os").getpid()}}'),
        "steps/boom_step.py": api_step("Boom", "/boom", 'raise ValueError("kaboom " + str(req["body"]["n"]))'),
        "steps/slow_step.py": api_step("Slow", "/slow", 'import asyncio\nawait asyncio.sleep(60)'),
        "steps/emitter_step.py": api_step("Emitter", "/emit", '''
try:
    data = object() if req["body"].get("bad") else 1
    await context.emit({"topic": req["body"].get("topic", "declared"), "data": data})
except Exception as e:
    return {"status": 200, "body": {"error": str(e), "type": type(e).__name__}}
return {"status": 200, "body": {"error": None}}
'''.strip(), emits='["declared"]'),
        "steps/broken_step.py": "config = {'type': 'api',, }\n",
    })


def test_invalid_json_and_schema_and_size(tmp_path, start_host):
    host = start_host(project(tmp_path), env={"STEPPE_MAX_BODY": "1000"})
    r = httpx.post(f"{host.url}/ok", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "Invalid JSON body" and r.json()["reason"]
    r = httpx.post(f"{host.url}/ok", json={"n": "three"})
    assert r.status_code == 400
    assert r.json()["errors"] == [{"path": "/n", "message": "expected an integer, got a string ('three')"}]
    r = httpx.post(f"{host.url}/ok", json={})
    assert r.status_code == 400 and "missing the required field 'n'" in r.json()["errors"][0]["message"]
    r = httpx.post(f"{host.url}/ok", json={"n": 1, "pad": "x" * 2000})
    assert r.status_code == 413
    r = httpx.post(f"{host.url}/ok", json={"n": 7})
    assert r.status_code == 200 and r.json()["n"] == 7


def test_unknown_route_is_json_404(tmp_path, start_host):
    host = start_host(project(tmp_path))
    r = httpx.get(f"{host.url}/nope")
    body = r.json()
    assert r.status_code == 404 and body.pop("traceId") == r.headers["x-trace-id"]
    assert body == {"error": "Not Found", "method": "GET", "path": "/nope"}
    r = httpx.get(f"{host.url}/ok")
    assert r.status_code == 405 and r.json()["error"] == "Method Not Allowed" and r.headers["allow"] == "POST"


def test_broken_step_is_reported_and_the_rest_serve(tmp_path, start_host):
    root = project(tmp_path)
    host = start_host(root)
    logs = host.wait_log("broken_step.py")
    assert "SyntaxError" in logs
    assert httpx.post(f"{host.url}/ok", json={"n": 1}).status_code == 200
    out = subprocess.run([sys.executable, "-m", "steppe.cli", "list", "--root", str(root)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    line = next(ln for ln in out.stdout.splitlines() if "broken_step.py" in ln)
    assert "error" in line
    assert "SyntaxError" in out.stdout and "broken_step.py" in out.stdout
    assert any(ln.startswith("Ok ") and " ok " in ln for ln in out.stdout.splitlines())


def test_duplicate_names_and_routes_fail_startup_naming_both_files(tmp_path, start_host):
    root = write_project(tmp_path, {
        "steps/a_step.py": api_step("Same", "/a", 'return {"status": 200}'),
        "steps/b_step.py": api_step("Same", "/b", 'return {"status": 200}'),
        "steps/c_step.py": api_step("C", "/users/:id", 'return {"status": 200}'),
        "steps/d_step.py": api_step("D", "/users/:userId", 'return {"status": 200}'),
    })
    host = start_host(root, wait=False)
    assert host.proc.wait(60) == 1
    logs = host.logs()
    assert "two steps are named 'Same': steps/a_step.py and steps/b_step.py" in logs
    assert "two steps serve POST /users/:userId: steps/c_step.py and steps/d_step.py" in logs


def test_throwing_handler_is_500_with_stack_in_logs_and_runner_stays(tmp_path, start_host):
    host = start_host(project(tmp_path))
    pid = host.runner_pid("python")
    r = httpx.post(f"{host.url}/boom", json={"n": 5})
    assert r.status_code == 500
    body = r.json()
    assert body["error"] == "Internal Server Error" and body["type"] == "ValueError"
    assert body["message"] == "kaboom 5" and body["traceId"] == r.headers["x-trace-id"]
    logs = host.wait_log("kaboom 5")
    assert "boom_step.py" in logs  # the stack names the user's file
    assert httpx.post(f"{host.url}/ok", json={"n": 1}).json()["pid"] == pid == host.runner_pid("python")


def test_handler_that_never_returns_gets_504(tmp_path, start_host):
    host = start_host(project(tmp_path), env={"STEPPE_API_TIMEOUT": "1"})
    started = time.monotonic()
    r = httpx.post(f"{host.url}/slow", json={"n": 1}, timeout=30)
    assert r.status_code == 504 and "1.0s" in r.json()["message"]
    assert time.monotonic() - started < 10
    assert httpx.post(f"{host.url}/ok", json={"n": 2}).status_code == 200


def test_sigkilled_runner_is_restarted_and_serves_next_request(tmp_path, start_host):
    host = start_host(project(tmp_path))
    pid = host.runner_pid("python")
    os.kill(pid, signal.SIGKILL)
    host.wait_log("runner was killed by signal SIGKILL")
    deadline = time.monotonic() + 20
    while True:
        r = httpx.post(f"{host.url}/ok", json={"n": 3}, timeout=20)
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert r.status_code == 200 and r.json()["pid"] != pid
    host.wait_log("python runner restarted")


def test_emit_errors_reach_the_handler(tmp_path, start_host):
    host = start_host(project(tmp_path))
    r = httpx.post(f"{host.url}/emit", json={"n": 1, "bad": True}).json()
    assert r["type"] == "TypeError" and "not JSON-serialisable" in r["error"]
    r = httpx.post(f"{host.url}/emit", json={"n": 1, "topic": "undeclared"}).json()
    assert "'undeclared', which is not in its config.emits" in r["error"]
    logs = host.wait_log("which is not in its config.emits")
    assert "[Emitter]" in logs
    assert httpx.post(f"{host.url}/emit", json={"n": 1}).json() == {"error": None}


def test_a_route_that_cannot_be_routed_is_reported_and_the_rest_serve(tmp_path, start_host):
    """Seen: one step with `path: '/c/:id/:id'` stopped the whole host at start-up with `error: Duplicated
    param name id at path /c/{id}/{id}`, naming no file; one with `path: 'items/:id'` (no leading '/') with
    an AssertionError from the router."""
    root = write_project(tmp_path, {
        "steps/ok_step.py": api_step("Ok", "/ok", 'return {"status": 200, "body": {"n": req["body"]["n"]}}'),
        "steps/twice_step.py": api_step("Twice", "/c/:id/:id", 'return {"status": 200, "body": {}}'),
        "steps/slashless_step.py": api_step("Slashless", "items/:id", 'return {"status": 200, "body": {}}'),
    })
    host = start_host(root)
    logs = host.wait_log("twice_step.py")
    assert "path parameter 'id' twice" in logs
    assert "slashless_step.py: api step needs config.path starting with '/'" in host.wait_log("slashless_step.py")
    assert httpx.post(f"{host.url}/ok", json={"n": 1}).status_code == 200


def test_config_values_the_host_cannot_use_are_reported_with_the_file(tmp_path, start_host):
    """Seen: `infrastructure: {handler: {timeout: 'soon'}}` in one event step ended start-up with `error:
    could not convert string to float: 'soon'`, naming no file; `flows: [1, null]` in another was accepted
    and made GET /__steppe/api/flows (the Workbench's Flows view) answer 500 for the whole project;
    `queryParams: 5` made GET /openapi.json answer 500."""
    event = '''
config = {{"type": "event", "name": "{name}", "subscribes": ["t"], "emits": [], {extra}}}
async def handler(data, context):
    pass
'''
    root = write_project(tmp_path, {
        "steps/ok_step.py": api_step("Ok", "/ok", 'return {"status": 200, "body": {"n": req["body"]["n"]}}'),
        "steps/soon_step.py": event.format(name="Soon", extra='"infrastructure": {"handler": {"timeout": "soon"}}'),
        "steps/retries_step.py": event.format(name="Retries", extra='"infrastructure": {"queue": {"maxRetries": -1}}'),
        "steps/flows_step.py": event.format(name="Flows", extra='"flows": [1, None]'),
        "steps/query_step.py": 'config = {"type": "api", "name": "Query", "path": "/q", "method": "GET", '
                               '"emits": [], "queryParams": 5, "description": 7}\n'
                               'async def handler(req, context):\n    return {"status": 200}\n',
        "steps/twice_step.py": api_step("Twice", "/twice/:a/:a", 'return {"status": 200}'),
    })
    host = start_host(root)
    assert ("soon_step.py: config.infrastructure.handler.timeout must be a number of seconds above 0, got 'soon'"
            in host.wait_log("soon_step.py"))
    assert "config.infrastructure.queue.maxRetries must be a whole number, 0 or more" in host.wait_log("retries_step")
    assert "flows_step.py: config.flows must be a list of flow names" in host.wait_log("flows_step.py")
    assert httpx.post(f"{host.url}/ok", json={"n": 1}).status_code == 200
    graph = httpx.get(f"{host.url}/__steppe/api/flows")
    assert graph.status_code == 200, graph.text
    assert {n["name"]: n["status"] for n in graph.json()["nodes"]}["Flows"] == "error"
    assert "query_step.py: config.queryParams must be a list of {name, description?}" in host.wait_log("query_step")
    assert httpx.get(f"{host.url}/openapi.json").status_code == 200  # 500 on the old code
    assert httpx.get(f"{host.url}/q").status_code == 503  # the step did not load: its route says so
    # seen: a path naming a parameter twice got 404 (no route could be made of it); it says why too
    twice = httpx.post(f"{host.url}/twice/x/y")
    assert twice.status_code == 503 and "names the path parameter 'a' twice" in twice.text, twice.text


def test_a_schema_that_is_not_valid_json_schema_is_reported_with_the_file(tmp_path, start_host):
    """Seen: `bodySchema: {properties: {n: {type: 'intege'}}, required: 'n'}` loaded as a ready step and
    every request to it answered 500 `SchemaError`; an event step's `input` schema of that kind failed every
    delivery of its topic instead."""
    event = '''
config = {"type": "event", "name": "Typo", "subscribes": ["t"], "emits": [], "input": {"type": "strin"}}
async def handler(data, context):
    pass
'''
    root = write_project(tmp_path, {
        "steps/body_step.py": 'config = {"type": "api", "name": "Body", "path": "/body", "method": "POST", '
                              '"emits": [], "bodySchema": {"type": "object", "properties": {"n": {"type": "intege"}}, '
                              '"required": "n"}}\n'
                              'async def handler(req, context):\n    return {"status": 200, "body": {}}\n',
        "steps/typo_step.py": event,
        "steps/reply_step.py": 'config = {"type": "api", "name": "Reply", "path": "/reply", "method": "GET", '
                               '"emits": [], "responseSchema": {"200": {"type": 5}}}\n'
                               'async def handler(req, context):\n    return {"status": 200, "body": {}}\n',
        "steps/fine_step.py": api_step("Fine", "/fine", 'return {"status": 200, "body": {"n": req["body"]["n"]}}'),
    })
    host = start_host(root)
    assert ("body_step.py: config.bodySchema is not a valid JSON Schema: at properties/n/type: 'intege' is not"
            in host.wait_log("body_step"))
    assert "typo_step.py: config.input is not a valid JSON Schema: at type: 'strin' is not" in host.wait_log("typo")
    assert "reply_step.py: config.responseSchema.200 is not a valid JSON Schema: at type: 5 is not" in host.wait_log(
        "reply_step")
    r = httpx.post(f"{host.url}/body", json={"n": 1})
    assert r.status_code == 503 and "config.bodySchema is not a valid JSON Schema" in r.text  # was 500 SchemaError
    assert httpx.get(f"{host.url}/reply").status_code == 503
    assert httpx.get(f"{host.url}/openapi.json").status_code == 200
    assert httpx.post(f"{host.url}/fine", json={"n": 4}).json() == {"n": 4}
