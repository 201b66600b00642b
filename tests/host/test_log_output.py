"""The host's log output going away (`steppe dev 2>&1 | head`, a log shipper that dies) is not a reason to
stop serving: records stay available over the admin API."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx

from conftest import free_port, wait_until, write_project

PROJECT = {
    "steps/a_step.py": """
        config = {"type": "api", "name": "A", "path": "/a", "method": "GET", "emits": []}
        async def handler(req, ctx):
            ctx.logger.info("hello from a")
            return {"status": 200, "body": "a"}
    """,
}


def test_a_closed_log_output_leaves_the_host_serving(tmp_path) -> None:
    # seen: once the reader of its stderr had gone, the host's next log line raised BrokenPipeError and the
    # host ended (exit 0, nothing said anywhere)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "steppe.cli", "dev", "--root", str(write_project(tmp_path, PROJECT)),
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert proc.stderr is not None
        assert b"runner" in proc.stderr.readline()  # the first line; then the reader goes away
        proc.stderr.close()
        url = f"http://127.0.0.1:{port}"

        def serving() -> bool:
            assert proc.poll() is None, f"the host exited with {proc.returncode}"
            try:
                return httpx.get(f"{url}/a", timeout=2).text == "a"
            except httpx.TransportError:
                return False

        wait_until(serving, 30, "the host to serve /a")
        for _ in range(20):  # each writes log lines
            assert httpx.get(f"{url}/a", timeout=5).text == "a"
        time.sleep(0.2)
        assert proc.poll() is None
        messages = [r["msg"] for r in httpx.get(f"{url}/__steppe/logs", params={"limit": 2000}).json()]
        assert any(m.startswith("the log output cannot be written (BrokenPipeError") for m in messages)
        assert messages.count("hello from a") >= 20
    finally:
        proc.terminate()
        assert proc.wait(20) == 0


LATE = {
    "steps/late_step.py": """
        import asyncio

        config = {"type": "api", "name": "LatePy", "path": "/late/py", "method": "POST", "emits": []}

        async def handler(req, ctx):
            asyncio.get_running_loop().call_later(0.2, ctx.logger.info, "after the answer", {"lang": "py"})
            return {"status": 202}
    """,
    "steps/late.step.js": """
        exports.config = { type: 'api', name: 'LateJs', path: '/late/js', method: 'POST', emits: [] }
        exports.handler = async (req, ctx) => {
          setTimeout(() => ctx.logger.info('after the answer', { lang: 'js' }), 200)
          return { status: 202 }
        }
    """,
}


def test_a_log_call_after_the_handler_answered_keeps_its_step_and_trace(tmp_path, start_host) -> None:
    """Seen: `ctx.logger.info` from a task the handler left running was recorded as `(logger)` with no step
    or trace: `GET /__steppe/logs?step=...` did not list it."""
    host = start_host(write_project(tmp_path, LATE))
    for lang in ("py", "js"):
        r = httpx.post(f"{host.url}/late/{lang}", json={})
        assert r.status_code == 202
        name = {"py": "LatePy", "js": "LateJs"}[lang]
        records = wait_until(lambda name=name: [x for x in httpx.get(f"{host.url}/__steppe/logs",
                                                                     params={"step": name}).json()
                                                if x["msg"] == "after the answer"], 10, f"{name}'s late record")
        assert records[0]["traceId"] == r.headers["x-trace-id"] and records[0]["fields"] == {"lang": lang}
