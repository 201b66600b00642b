"""The real runners through a real host over HTTP (issue 8, section 2): a handler writing to fd 1 by any
means corrupts nothing in flight; oversized requests never reach a runner; limits a runner would refuse
stop the start; the start-up log names each runner's version."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from typing import Any

import httpx
import pytest

from conftest import RunningHost, need, wait_until, write_project


def test_limits_a_runner_would_refuse_stop_the_start_with_one_line(tmp_path):
    write_project(tmp_path, {"steps/a_step.py": "config = {}\n"})
    out = subprocess.run([sys.executable, "-m", "steppe.cli", "start", "--root", str(tmp_path), "--port", "1"],
                         capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", "STEPPE_MAX_LINE": "1000000", "STEPPE_MAX_BODY": "200000"})
    assert out.returncode == 2
    [line] = out.stderr.strip().splitlines()
    assert line.startswith("error: max_line (1000000 bytes) is below the largest API invoke the limits allow")
    assert "raise max_line or lower max_body / max_headers" in line


STRAY = {
    "steps/stray.step.js": '''
        const fs = require('fs')
        const { spawnSync } = require('child_process')
        exports.config = { type: 'api', name: 'NodeStray', path: '/node/stray', method: 'GET', emits: [] }
        exports.handler = async () => {
          spawnSync('sh', ['-c', 'echo node child with inherited stdio'], { stdio: 'inherit' })
          fs.writeSync(1, 'node raw fd1 write without a newline ')
          return { status: 200, body: { lang: 'node' } }
        }
    ''',
    "steps/slow.step.js": '''
        exports.config = { type: 'api', name: 'NodeSlow', path: '/node/slow', method: 'GET', emits: [] }
        exports.handler = async () => {
          await new Promise((resolve) => setTimeout(resolve, 1500))
          return { status: 200, body: { slow: true } }
        }
    ''',
    "steps/stray_step.py": '''
        import os
        import subprocess
        config = {"type": "api", "name": "PyStray", "path": "/py/stray", "method": "GET", "emits": []}
        def handler(req, ctx):
            subprocess.run(["sh", "-c", "echo python child with inherited stdio"], stdout=1)
            os.write(1, b"python raw fd1 write ")
            return {"status": 200, "body": {"lang": "python"}}
    ''',
    "steps/stray_step.rb": '''
        def config
          { 'type' => 'api', 'name' => 'RbStray', 'path' => '/rb/stray', 'method' => 'GET', 'emits' => [] }
        end

        def handler(_req, _context)
          system('echo ruby child with inherited stdio', out: 1)
          STDOUT.syswrite('ruby raw fd1 write ')
          { 'status' => 200, 'body' => { 'lang' => 'ruby' } }
        end
    ''',
}


@pytest.fixture(scope="module")
def stray_host(tmp_path_factory):  # noqa: ANN001, ANN201
    need("node")
    need("ruby")
    host = RunningHost(write_project(tmp_path_factory.mktemp("stray"), STRAY), [], {"STEPPE_API_TIMEOUT": "5"})
    try:
        yield host.wait_ready()
    finally:
        host.stop()


@pytest.mark.parametrize("lang", ["node", "py", "rb"])
def test_handlers_writing_to_fd_1_corrupt_nothing_in_flight(stray_host, lang):
    """Seen in Node: a handler's fs.writeSync(1) joined the next protocol line, a request timed out, the
    runner was killed, and an unrelated in-flight request got 502."""
    slow: dict[str, Any] = {}
    waiter = threading.Thread(target=lambda: slow.update(r=httpx.get(f"{stray_host.url}/node/slow", timeout=20)))
    waiter.start()
    time.sleep(0.2)
    for _ in range(3):
        r = httpx.get(f"{stray_host.url}/{lang}/stray", timeout=20)
        assert r.status_code == 200, r.text
    waiter.join()
    assert slow["r"].status_code == 200 and slow["r"].json() == {"slow": True}
    name = {"node": "node", "py": "python", "rb": "ruby"}[lang]
    text = stray_host.wait_log(f"({name}-runner-stdout) {name} raw fd1 write")  # info, as the runner's stdout
    assert f"({name}-runner-stdout) {name} child with inherited stdio" in text
    assert "ignored a line" not in text and " died:" not in text
    assert wait_until(lambda: stray_host.runner_pid(name), 5, "the runner") and "restarted" not in text


def test_oversized_requests_never_reach_the_runner_nor_take_it_offline(tmp_path, start_host):
    """Seen: five requests with a 68 MB header outgrew the Python runner's line limit and crashed it five
    times, after which every Python step answered 503 for good. The limits are scaled down here (the
    runner learns max_line from the host): headers larger than a protocol line must be refused before
    they reach the runner, and the runner keeps serving."""
    root = write_project(tmp_path, {"steps/hi_step.py": '''
        config = {"type": "api", "name": "Hi", "path": "/hi", "method": "GET", "emits": []}
        async def handler(req, ctx):
            return {"status": 200, "body": {"hi": True}}
    '''})
    host = start_host(root, env={"STEPPE_MAX_LINE": "200000", "STEPPE_MAX_BODY": "1000",
                                 "STEPPE_MAX_HEADERS": "16000", "STEPPE_MAX_EVENT": "1000"})
    pid = host.runner_pid("python")
    for _ in range(5):
        r = httpx.get(f"{host.url}/hi", headers={"x-big": "h" * 300_000}, timeout=20)
        assert r.status_code in (431, 500), r.text  # 431 at the HTTP edge, else refused before sending
        if r.status_code == 500:
            assert r.json()["type"] == "PayloadTooLarge"
    assert httpx.get(f"{host.url}/hi", timeout=10).json() == {"hi": True}
    assert host.runner_pid("python") == pid and " died:" not in host.logs()


def test_the_start_up_log_names_each_runner_with_its_version(stray_host):
    text = stray_host.logs()
    for name in ("python", "node", "ruby"):
        assert f"{name} runner 0.1.0 started (pid " in text
    assert "fds transport" in text
