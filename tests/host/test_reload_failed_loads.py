"""Dev reload retries files that failed to load: on a dependency install (real npm) and on any edit; until
then their routes answer 503 with the load error (dev) or a plain 503 (start), never a bare 404."""

from __future__ import annotations

import json
import subprocess

import httpx

from conftest import need, wait_until, write_project


def answer_becomes(url: str, expected: int | str, timeout: float = 15) -> None:
    """Wait until GET url answers `expected` (a status code, or the text of a 200)."""
    def matches() -> bool:
        r = httpx.get(url)
        return r.status_code == expected if isinstance(expected, int) else (r.status_code, r.text) == (200, expected)
    wait_until(matches, timeout, f"GET {url} to answer {expected!r}")

ORDERS_TS = """
import { shout } from 'shout-local'
export const config = { type: 'api', name: 'CreateOrder', path: '/orders', method: 'POST', emits: [] }
export const handler = async () => ({ status: 201, body: { ok: shout('made') } })
"""
PACKAGE = {"name": "shout-local", "version": "1.0.0", "main": "index.js"}


def test_missing_package_answers_503_then_loads_after_npm_install(tmp_path, start_host):
    npm = need("npm")
    root = write_project(tmp_path / "app", {
        "package.json": json.dumps({"name": "app", "version": "1.0.0", "private": True}),
        "steps/orders.step.ts": ORDERS_TS,
        "steps/ping_step.py": """
            config = {"type": "api", "name": "Ping", "path": "/ping", "method": "GET", "emits": []}
            async def handler(req, context):
                return {"status": 200, "body": "pong"}
        """,
    })
    vendor = write_project(tmp_path / "shout", {"package.json": json.dumps(PACKAGE),
                                                 "index.js": "exports.shout = s => s.toUpperCase()\n"})
    host = start_host(root)
    r = httpx.post(f"{host.url}/orders", json={})
    assert r.status_code == 503, r.text
    body = r.json()
    assert "shout-local" in body["loadError"] and "steps/orders.step.ts" in body["message"]
    assert r.headers["retry-after"]
    assert httpx.get(f"{host.url}/orders").status_code == 405  # the guessed route keeps its method
    assert httpx.get(f"{host.url}/nothing").status_code == 404

    # the step file itself is not touched: installing the package is what brings the route up
    subprocess.run([npm, "install", "--no-audit", "--no-fund", "--offline", str(vendor)], cwd=root, check=True,
                   capture_output=True, timeout=120)
    wait_until(lambda: httpx.post(f"{host.url}/orders", json={}).status_code == 201, 20,
               "POST /orders to answer 201 after npm install")
    assert httpx.post(f"{host.url}/orders", json={}).json() == {"ok": "MADE"}
    assert "loaded steps/orders.step.ts (it failed before; retried after the dependencies changed)" in host.logs()
    assert "reloaded steps/orders.step.ts" not in host.logs()


def test_a_failed_file_is_retried_on_any_edit_and_never_logged_as_reloaded(tmp_path, start_host):
    root = write_project(tmp_path, {
        "steps/needs_helper_step.py": """
            from .helper import VALUE
            config = {"type": "api", "name": "NeedsHelper", "path": "/value", "method": "GET", "emits": []}
            async def handler(req, context):
                return {"status": 200, "body": VALUE}
        """,
        "steps/other_step.py": """
            config = {"type": "api", "name": "Other", "path": "/other", "method": "GET", "emits": []}
            async def handler(req, context):
                return {"status": 200, "body": "v1"}
        """,
    })
    host = start_host(root)
    assert httpx.get(f"{host.url}/value").status_code == 503

    # a broken edit of a step says it did not load, not "reloaded"
    (root / "steps/other_step.py").write_text("config = {'type': 'api', 'path': '/other',,}\n")
    answer_becomes(f"{host.url}/other", 503)
    r = httpx.get(f"{host.url}/other")
    assert "SyntaxError" in r.json()["loadError"]
    host.wait_log("steps/other_step.py did not load")
    assert "reloaded steps/other_step.py" not in host.logs()

    # the missing module appears (a new file, not a step): the failed step loads without being touched
    (root / "steps/helper.py").write_text("VALUE = 'here'\n")
    (root / "steps/other_step.py").write_text(
        'config = {"type": "api", "name": "Other", "path": "/other", "method": "GET", "emits": []}\n'
        'async def handler(req, context):\n    return {"status": 200, "body": "v2"}\n')
    answer_becomes(f"{host.url}/value", "here")
    answer_becomes(f"{host.url}/other", "v2")


def test_start_mode_answers_a_plain_503_for_a_step_that_did_not_load(tmp_path, start_host):
    root = write_project(tmp_path, {"steps/broken_step.py": """
        import not_installed_anywhere
        config = {"type": "api", "name": "Broken", "path": "/broken/:id", "method": "GET", "emits": []}
        async def handler(req, context):
            return {"status": 200}
    """})
    host = start_host(root, mode="start")
    r = httpx.get(f"{host.url}/broken/7")
    assert r.status_code == 503
    assert r.json().keys() == {"error", "traceId"} and "not_installed" not in r.text
