"""A step file whose top level never finishes (or kills its runner) is reported with its path, and the
files loaded after it in the same language still load."""

from __future__ import annotations

import httpx

from conftest import write_project

FAST_PINGS = {"STEPPE_PING_INTERVAL": "0.2", "STEPPE_PING_TIMEOUT": "1"}
PROJECT = {
    "steps/a_fine_step.py": """
        config = {"type": "api", "name": "PyBefore", "path": "/py-before", "method": "GET", "emits": []}
        async def handler(req, ctx):
            return {"status": 200, "body": "py-before"}
    """,
    "steps/b_hang_step.py": """
        import time
        time.sleep(3600)  # a top level that never finishes: the runner answers no ping
        config = {"type": "api", "name": "PyHang", "path": "/py-hang", "method": "GET", "emits": []}
        async def handler(req, ctx):
            return {"status": 200, "body": "never"}
    """,
    "steps/c_fine_step.py": """
        config = {"type": "api", "name": "PyAfter", "path": "/py-after", "method": "GET", "emits": []}
        async def handler(req, ctx):
            return {"status": 200, "body": "py-after"}
    """,
    "steps/b_hang.step.js": """
        while (true) {}  // a top level that never finishes
        export const config = { type: 'api', name: 'JsHang', path: '/js-hang', method: 'GET', emits: [] }
        export const handler = async () => ({ status: 200, body: 'never' })
    """,
    "steps/c_fine.step.js": """
        export const config = { type: 'api', name: 'JsAfter', path: '/js-after', method: 'GET', emits: [] }
        export const handler = async () => ({ status: 200, body: 'js-after' })
    """,
}


def test_a_step_file_that_hangs_its_runner_does_not_take_the_files_after_it(tmp_path, start_host):
    # seen: every file queued behind the hanging one in its language was reported "did not load" (503 until
    # edited), with "ConnectionLost: runner closed its stdout" as the reason for all of them
    host = start_host(write_project(tmp_path, PROJECT), env=FAST_PINGS)
    for path in ("/py-before", "/py-after", "/js-after"):
        r = httpx.get(f"{host.url}{path}")
        assert (r.status_code, r.text) == (200, path[1:]), path
    for path, file in (("/py-hang", "steps/b_hang_step.py"), ("/js-hang", "steps/b_hang.step.js")):
        r = httpx.get(f"{host.url}{path}")
        assert r.status_code == 503 and file in r.json()["message"]
    logs = host.logs()
    for file, language in (("steps/b_hang_step.py", "python"), ("steps/b_hang.step.js", "node")):
        assert f"failed to load {file}: its runner died while loading it" in logs and f"crash the {language}" in logs
    assert "ConnectionLost" not in logs
