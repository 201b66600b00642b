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
