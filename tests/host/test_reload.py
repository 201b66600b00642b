"""Dev mode reload: edits, new and deleted step files, helper modules, and broken edits, live."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import httpx

from conftest import write_project


def answer_becomes(url: str, expected: object, timeout: float = 10) -> float:
    """Seconds until GET url answers `expected` (status code int, or JSON body)."""
    started = time.monotonic()
    while True:
        r = httpx.get(url)
        if isinstance(expected, int):
            got: object = r.status_code
        elif r.status_code != 200:
            got = None
        else:
            got = r.text if isinstance(expected, str) else r.json()
        if got == expected:
            return time.monotonic() - started
        assert time.monotonic() - started < timeout, f"{url} still answers {r.status_code} {r.text}"
        time.sleep(0.02)


def write(path: Path, text: str) -> None:
    path.write_text(textwrap.dedent(text).lstrip())


def test_edits_are_picked_up_without_restart(tmp_path, start_host):
    root = write_project(tmp_path, {
        "steps/hello_step.py": """
            from .helper import greeting
            config = {"type": "api", "name": "Hello", "path": "/hello", "method": "GET", "emits": []}
            async def handler(req, context):
                return {"status": 200, "body": greeting("v1")}
        """,
        "steps/helper.py": "def greeting(v):\n    return {'hello': v}\n",
        "steps/other.step.ts": """
            export const config = { type: 'api', name: 'Other', path: '/other', method: 'GET', emits: [] }
            export const handler = async () => ({ status: 200, body: { other: 1 } })
        """,
    })
    host = start_host(root)
    pid = host.runner_pid("python")
    assert httpx.get(f"{host.url}/hello").json() == {"hello": "v1"}

    # a step file edit reloads just that file, in the same runner
    write(root / "steps/hello_step.py", """
        from .helper import greeting
        config = {"type": "api", "name": "Hello", "path": "/hello", "method": "GET", "emits": []}
        async def handler(req, context):
            return {"status": 200, "body": greeting("v2")}
    """)
    answer_becomes(f"{host.url}/hello", {"hello": "v2"})
    assert host.runner_pid("python") == pid

    # a TS edit
    write(root / "steps/other.step.ts", """
        export const config = { type: 'api', name: 'Other', path: '/other', method: 'GET', emits: [] }
        export const handler = async () => ({ status: 200, body: { other: 2 } })
    """)
    answer_becomes(f"{host.url}/other", {"other": 2})

    # a helper module edit restarts the Python runner, which reloads its files
    write(root / "steps/helper.py", "def greeting(v):\n    return {'hi': v}\n")
    answer_becomes(f"{host.url}/hello", {"hi": "v2"})
    assert host.runner_pid("python") != pid

    # a new step file adds its route; a route change moves it; deleting removes it
    write(root / "steps/new_step.py", """
        config = {"type": "api", "name": "New", "path": "/new", "method": "GET", "emits": []}
        async def handler(req, context):
            return {"status": 200, "body": "new"}
    """)
    answer_becomes(f"{host.url}/new", 200)
    (root / "steps/new_step.py").unlink()
    answer_becomes(f"{host.url}/new", 404)

    # a broken edit is reported and unroutes that step only; fixing it brings it back
    (root / "steps/hello_step.py").write_text("config = {'type': 'api',,}\n")
    answer_becomes(f"{host.url}/hello", 404)
    assert httpx.get(f"{host.url}/other").status_code == 200
    steps = {s["path"]: s for s in httpx.get(f"{host.url}/__steppe/steps").json()["steps"]}
    assert steps["steps/hello_step.py"]["status"] == "error" and "SyntaxError" in steps["steps/hello_step.py"]["error"]
    write(root / "steps/hello_step.py", """
        config = {"type": "api", "name": "Hello", "path": "/hello", "method": "GET", "emits": []}
        async def handler(req, context):
            return {"status": 200, "body": "fixed"}
    """)
    answer_becomes(f"{host.url}/hello", "fixed")
    assert "reloaded steps/hello_step.py" in host.logs()


def test_reload_rewires_events_and_catches_clashes(tmp_path, start_host):
    root = write_project(tmp_path, {
        "steps/emit_step.py": """
            config = {"type": "api", "name": "Emit", "path": "/emit", "method": "POST", "emits": []}
            async def handler(req, context):
                await context.emit({"topic": "ping", "data": req["body"]})
                return {"status": 200, "body": "ok"}
        """,
        "steps/read_step.py": """
            config = {"type": "api", "name": "Read", "path": "/read", "method": "GET", "emits": []}
            async def handler(req, context):
                return {"status": 200, "body": await context.state.get("got", "last")}
        """,
    })
    host = start_host(root)
    # a new subscriber starts receiving the topic it subscribes to
    write(root / "steps/sub_step.py", """
        config = {"type": "event", "name": "Sub", "subscribes": ["ping"], "emits": []}
        async def handler(input, context):
            await context.state.set("got", "last", input)
    """)
    deadline = time.monotonic() + 10
    while httpx.get(f"{host.url}/__steppe/steps").json()["steps"].__len__() < 3:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    httpx.post(f"{host.url}/emit", json={"n": 1})
    answer_becomes(f"{host.url}/read", {"n": 1})
    # a second step taking an existing route is refused by name, and the first keeps serving
    write(root / "steps/clash_step.py", """
        config = {"type": "api", "name": "Clash", "path": "/read", "method": "GET", "emits": []}
        async def handler(req, context):
            return {"status": 200, "body": "clash"}
    """)
    host.wait_log("two steps serve GET /read")
    assert httpx.get(f"{host.url}/read").json() == {"n": 1}
