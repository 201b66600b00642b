"""A handler that asks its process to exit, in each language, against a real host and its runners.

Seen: a JS handler's `process.exit(3)` ended the Node runner: that request and every other one in flight in
Node got 502 while the runner was restarted. Python's `sys.exit()` and Ruby's `exit`/`abort` already raised in
the handler only (500 with the reason; the runner kept serving). Now `process.exit()` throws in the handler
too. (`os._exit`, `exit!` and `process.abort()` end a process by design: the runner is restarted.)"""

from __future__ import annotations

import concurrent.futures

import httpx
import pytest

from conftest import RunningHost, write_project

PROJECT = {
    "steps/py_step.py": '''
        import asyncio, os, sys
        config = {"type": "api", "name": "Py", "path": "/py/:how", "method": "GET", "emits": []}
        async def handler(req, ctx):
            how = req["pathParams"]["how"]
            if how == "exit":
                sys.exit(3)
            if how == "slow":
                await asyncio.sleep(1.5)
            return {"status": 200, "body": {"pid": os.getpid()}}
    ''',
    "steps/js.step.js": '''
        exports.config = { type: 'api', name: 'Js', path: '/js/:how', method: 'GET', emits: [] }
        exports.handler = async (req) => {
          if (req.pathParams.how === 'exit') process.exit(3)
          if (req.pathParams.how === 'slow') await new Promise((resolve) => setTimeout(resolve, 1500))
          return { status: 200, body: { pid: process.pid } }
        }
    ''',
    "steps/rb_step.rb": '''
        def config
          { type: 'api', name: 'Rb', path: '/rb/:how', method: 'GET', emits: [] }
        end

        def handler(req, ctx)
          exit(3) if req.pathParams.how == 'exit'
          sleep 1.5 if req.pathParams.how == 'slow'
          { status: 200, body: { pid: Process.pid } }
        end
    ''',
}


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    running = RunningHost(write_project(tmp_path_factory.mktemp("exits"), PROJECT), [], None).wait_ready()
    yield running
    running.stop()


@pytest.mark.parametrize(("lang", "kind"), [("py", "SystemExit"), ("js", "ProcessExit"), ("rb", "SystemExit")])
def test_a_handler_asking_to_exit_fails_alone_and_its_runner_keeps_serving(host, lang, kind):
    pid = httpx.get(f"{host.url}/{lang}/ok", timeout=10).json()["pid"]
    with concurrent.futures.ThreadPoolExecutor() as pool:
        in_flight = pool.submit(httpx.get, f"{host.url}/{lang}/slow", timeout=10)
        exited = httpx.get(f"{host.url}/{lang}/exit", timeout=10)
        assert in_flight.result().status_code == 200, in_flight.result().text  # 502 for JS on the old code
    assert exited.status_code == 500, exited.text
    assert exited.json()["type"] == kind, exited.text
    assert httpx.get(f"{host.url}/{lang}/ok", timeout=10).json()["pid"] == pid  # the same runner
