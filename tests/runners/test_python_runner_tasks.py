"""The Python runner's invocation tasks (a handler's first step runs in the turn its request is read, as its
task) and the modules it loads only when a handler needs them (ssl, ctypes)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from test_python_runner import RunnerError, api, invoke, invoke_params, load, start  # noqa: F401

pytestmark = pytest.mark.timeout(20)
PROBE = "steps/task_probe_step.py"


async def test_a_handler_runs_in_its_own_task_from_its_first_step(start):  # noqa: F811
    client = await start()
    await load(client, PROBE)
    # the same task before and after the first suspension
    assert (await invoke(client, PROBE, "api", api({})))["body"] == {"task": True, "same": True}
    # asyncio.timeout (as aiohttp's timeouts) raises outside a task: it works in a step that never suspends
    assert (await invoke(client, PROBE, "api", api({"mode": "timeout"})))["body"] == {"ok": True}
    # a handler that cancels its own task before its first await gets the CancelledError at that await
    assert (await invoke(client, PROBE, "api", api({"mode": "self-cancel"})))["body"] == {"cancelled": True}


async def test_answers_come_in_request_order_for_handlers_that_never_wait(start):  # noqa: F811
    client = await start()
    await load(client, PROBE)
    futures = [client.request_nowait("invoke", invoke_params(PROBE, "api", api({"mode": "n", "n": i})))[1]
               for i in range(200)]
    assert [(await fut)["body"]["n"] for fut in futures] == list(range(200))


async def test_cancel_reaches_a_handler_suspended_in_its_first_step(start):  # noqa: F811
    client = await start()
    await load(client, "steps/sleepy_step.py")
    rid, fut = client.request_nowait("invoke", invoke_params("steps/sleepy_step.py", "api", api({"seconds": 5})))
    assert await client.request("ping", {}) == "pong"  # the invoke was read and its handler is sleeping
    client.notify("cancel", {"id": rid})
    with pytest.raises(RunnerError) as e:
        await fut
    assert e.value.code == -32002


async def test_ssl_and_ctypes_load_only_when_a_handler_needs_them(start, tmp_path: Path):  # noqa: F811
    client = await start()
    await load(client, PROBE)
    assert (await invoke(client, PROBE, "api", api({"mode": "modules"})))["body"] == {"_ssl": False, "ctypes": False}
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost", "-days", "1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    # an asyncio TLS server and client inside a handler: ssl and asyncio's sslproto load on this first use
    reply = await invoke(client, PROBE, "api", api({"mode": "tls", "cert": str(cert), "key": str(key)}))
    assert reply["body"] == {"echo": "over tls"}
    assert (await invoke(client, PROBE, "api", api({"mode": "modules"})))["body"]["_ssl"] is True
