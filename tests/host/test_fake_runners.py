"""The host against misbehaving runners (tests/fakes/fake_runner.py), registered through steppe.toml."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import pytest

from conftest import write_project

FAKE = Path(__file__).resolve().parents[1] / "fakes" / "fake_runner.py"


def fake_project(tmp_path: Path, mode: str) -> Path:
    return write_project(tmp_path, {
        "steppe.toml": f'''
            [runners.fake]
            command = ["{sys.executable}", "{FAKE}", "{mode}"]
            extensions = [".fake"]
        ''',
        "steps/hello.step.fake": '{"type": "api", "name": "FakeHello", "path": "/fake", "method": "GET", "emits": []}',
        "steps/real_step.py": '''
            config = {"type": "api", "name": "Real", "path": "/real", "method": "GET", "emits": []}
            async def handler(req, ctx):
                return {"status": 200, "body": {"real": True}}
        ''',
    })


def test_garbage_lines_are_logged_not_fatal(tmp_path, start_host):
    host = start_host(fake_project(tmp_path, "garbage"))
    for _ in range(3):
        r = httpx.get(f"{host.url}/fake")
        assert r.status_code == 200 and r.json()["fake"] is True
    assert "ignored a line from the fake runner (not JSON)" in host.wait_log("this is not JSON")


def test_answers_with_unknown_ids_are_logged(tmp_path, start_host):
    host = start_host(fake_project(tmp_path, "stray-ids"))
    assert httpx.get(f"{host.url}/fake").status_code == 200
    host.wait_log("answer to an unknown request id")
    assert httpx.get(f"{host.url}/fake").status_code == 200


def test_runner_that_exits_at_start_marks_its_steps_unavailable(tmp_path, start_host):
    host = start_host(fake_project(tmp_path, "exit-start"))
    assert httpx.get(f"{host.url}/real").json() == {"real": True}
    steps = {s["name"]: s for s in httpx.get(f"{host.url}/__steppe/steps").json()["steps"]}
    fake = next(s for s in steps.values() if s["path"].endswith(".fake"))
    assert fake["status"] == "unavailable" and "fake runner failed to start" in fake["error"]
    assert "fake runner refusing to start" in host.logs()


def test_runner_that_crashes_on_invoke_is_restarted(tmp_path, start_host):
    host = start_host(fake_project(tmp_path, "crash"))
    first = host.runner_pid("fake")
    assert httpx.get(f"{host.url}/fake").status_code == 502
    host.wait_log("runner exited with status 3")
    deadline = time.monotonic() + 10
    while host.runner_pid("fake") == first and time.monotonic() < deadline:
        time.sleep(0.05)
    assert host.runner_pid("fake") != first
    assert httpx.get(f"{host.url}/real").status_code == 200


@pytest.mark.parametrize("mode", ["hang"])
def test_hanging_invoke_times_out_and_host_stays(tmp_path, start_host, mode):
    host = start_host(fake_project(tmp_path, mode), env={"STEPPE_API_TIMEOUT": "0.5"})
    assert httpx.get(f"{host.url}/fake", timeout=20).status_code == 504
    assert httpx.get(f"{host.url}/real").status_code == 200


def test_a_message_the_host_cannot_keep_fails_its_call_at_once(tmp_path, start_host):
    """Seen (Node, Ruby): a runner's answer holding a lone surrogate or a number too large for a double is JSON,
    but not JSON the host reads (orjson refuses both): the line was ignored as 'not JSON', the request waited out its
    timeout, the runner was killed for ignoring the cancel. Now the call fails at once, with the reason."""
    host = start_host(fake_project(tmp_path, "unkeepable"), env={"STEPPE_API_TIMEOUT": "20"})
    pid = host.runners()["runners"]["fake"]["pid"]
    started = time.monotonic()
    r = httpx.get(f"{host.url}/fake", timeout=30)
    assert time.monotonic() - started < 5 and r.status_code == 500, r.text
    assert r.json()["type"] == "UnreadableAnswer" and "could not be read" in r.json()["message"], r.text
    logs = host.wait_log("UnreadableAnswer")
    assert "state.set" in logs and "could not be read" in logs  # the runner's call was answered with the reason
    assert host.runners()["runners"]["fake"]["pid"] == pid
    assert httpx.get(f"{host.url}/real").json() == {"real": True}


def test_a_load_answered_with_no_config_fails_that_file_alone(tmp_path, start_host):
    """Seen: a JS step file that replaced Object.prototype.toJSON made its load answer a string; the host logged
    `reload failed: AttributeError: 'str' object has no attribute 'get'` and the step was neither served nor
    listed as failed."""
    root = fake_project(tmp_path, "oddload")
    (root / "steps" / "odd.step.fake").write_text(
        '{"type": "api", "name": "Odd", "path": "/odd", "method": "GET", "emits": []}')
    host = start_host(root)
    steps = {s["path"]: s for s in httpx.get(f"{host.url}/__steppe/steps").json()["steps"]}
    odd = steps["steps/odd.step.fake"]
    assert odd["status"] == "error" and "answered the load with a string, not {config, handler}" in odd["error"], odd
    assert httpx.get(f"{host.url}/fake").status_code == 200 and httpx.get(f"{host.url}/real").status_code == 200
    assert "AttributeError" not in host.logs()
