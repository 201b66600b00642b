"""Supervision against misbehaving runners (tests/fakes/fake_runner.py, registered through steppe.toml):
deaf runners, crash loops, over-long protocol lines, cancels ignored or answered late. The cases already
covered by tests/host/test_fake_runners.py (garbage lines, unknown ids, a hung API call) are not repeated."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from conftest import wait_until, write_project

FAKE = Path(__file__).resolve().parents[1] / "fakes" / "fake_runner.py"


def fake_project(root: Path, mode: str, api_extra: str = "", event_step: bool = True) -> Path:
    files = {
        "steppe.toml": f'''
            [runners.fake]
            command = ["{sys.executable}", "{FAKE}", "{mode}"]
            extensions = [".fake"]
        ''',
        "steps/hello.step.fake": '{"type": "api", "name": "FakeHello", "path": "/fake", "method": "GET", '
                                 f'"emits": []{api_extra}}}',
        "steps/ev.step.fake": '{"type": "event", "name": "FakeEvent", "subscribes": ["fake.ev"], "emits": []}',
        "steps/real_step.py": '''
            config = {"type": "api", "name": "Real", "path": "/real", "method": "GET", "emits": []}
            async def handler(req, ctx):
                return {"status": 200, "body": {"real": True}}
        ''',
    }
    if not event_step:  # a deaf runner answers one load only
        del files["steps/ev.step.fake"]
    return write_project(root, files)




# a small line limit, with request limits small enough to pass the start-up check against it
SMALL_LIMITS = {"STEPPE_MAX_LINE": "90000", "STEPPE_MAX_BODY": "1000", "STEPPE_MAX_HEADERS": "1000",
                "STEPPE_MAX_EVENT": "1000"}


def fake_runner(host) -> dict:
    return host.runners()["runners"]["fake"]


def steps(host) -> dict[str, dict]:
    return {s["name"]: s for s in httpx.get(f"{host.url}/__steppe/steps").json()["steps"]}


def steppe_list(host, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "steppe.cli", "list", "--root", str(host.root), "--port",
                          str(host.port), *args], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, (out.stdout, out.stderr)
    return out.stdout


def still_serving(host) -> None:
    assert httpx.get(f"{host.url}/real").json() == {"real": True}


def test_runner_that_stops_answering_pings_is_killed_and_restarted(tmp_path, start_host):
    host = start_host(fake_project(tmp_path, "deaf", event_step=False),
                      env={"STEPPE_PING_INTERVAL": "0.2", "STEPPE_PING_TIMEOUT": "0.5", "STEPPE_RESTART_CAP": "0.5"})
    first = fake_runner(host)["pid"]
    host.wait_log("fake runner did not answer a ping in 0.5s; killing it")
    host.wait_log(f"fake runner (pid {first}) died: runner was killed by signal SIGKILL")
    wait_until(lambda: fake_runner(host)["pid"] not in (first, None), 10, "a new fake runner")
    host.wait_log("fake runner restarted (pid")
    still_serving(host)
    # it stays deaf: each incarnation is killed in turn; past five deaths in a minute it is crash-looping,
    # and it is still restarted, with a capped backoff, never given up on
    wait_until(lambda: "crashed" in (fake_runner(host)["unhealthy"] or ""), 20, "the crash loop to show")
    assert "restarting it with backoff" in fake_runner(host)["unhealthy"]
    assert steps(host)["FakeHello"]["status"] == "unhealthy"
    restarts = fake_runner(host)["restarts"]
    wait_until(lambda: fake_runner(host)["restarts"] > restarts, 10, "another restart")
    still_serving(host)


def test_runner_exiting_at_start_is_listed_unavailable_by_steppe_list(tmp_path, start_host):
    host = start_host(fake_project(tmp_path, "exit-start"))
    live = steppe_list(host)
    assert live.startswith("(from the running host)")
    row = next(x for x in live.splitlines() if x.endswith("steps/hello.step.fake"))
    assert "unavailable" in row.split()
    assert "↳ fake runner failed to start" in live and "fake runner refusing to start" in live
    listed = {s["path"]: s for s in json.loads(steppe_list(host, "--json"))["steps"]}
    assert listed["steps/ev.step.fake"]["status"] == "unavailable"
    assert "fake runner refusing to start" in listed["steps/ev.step.fake"]["error"]
    assert listed["steps/real_step.py"]["status"] == "ok"
    still_serving(host)


def test_runner_crashing_at_every_invoke_is_marked_unhealthy_and_never_given_up(tmp_path, start_host):
    host = start_host(fake_project(tmp_path, "crash"), env={"STEPPE_RETRY_BASE": "0.05", "STEPPE_RESTART_CAP": "1"})
    pids = [fake_runner(host)["pid"]]
    for n in range(1, 6):
        assert httpx.get(f"{host.url}/fake", timeout=10).status_code == 502
        host.wait_log(f"fake runner (pid {pids[-1]}) died: runner exited with status 3")
        pids.append(wait_until(lambda: fake_runner(host)["pid"] not in (*pids, None) and fake_runner(host)["pid"],
                               10, f"restart {n}"))
    reason = "fake runner crashed 5 times in 60s; restarting it with backoff (see its logs)"
    assert fake_runner(host)["unhealthy"] == reason
    assert len(set(pids)) == 6 and fake_runner(host)["restarts"] == 5

    rows = steps(host)
    for name in ("FakeHello", "FakeEvent"):
        assert rows[name]["status"] == "unhealthy" and rows[name]["error"] == reason
    assert rows["Real"]["status"] == "ok"
    live = steppe_list(host)
    assert "unhealthy" in next(x for x in live.splitlines() if x.startswith("FakeHello")).split()
    assert f"↳ {reason}" in live
    # it is up again (crashing only when invoked): calls reach it, and it is restarted each time
    assert httpx.get(f"{host.url}/fake", timeout=10).status_code == 502
    wait_until(lambda: fake_runner(host)["restarts"] == 6, 10, "a sixth restart")
    still_serving(host)


def test_runner_answering_with_an_over_long_line_is_restarted_and_the_host_says_why(tmp_path, start_host):
    host = start_host(fake_project(tmp_path, "longline"), env={**SMALL_LIMITS, "FAKE_LINE_BYTES": "200000"})
    first = fake_runner(host)["pid"]
    r = httpx.get(f"{host.url}/fake", timeout=10)
    assert r.status_code == 502
    host.wait_log("runner sent a protocol line over the 90000-byte limit")
    wait_until(lambda: fake_runner(host)["pid"] not in (first, None), 10, "a new fake runner")
    host.wait_log("fake runner restarted (pid")
    still_serving(host)


def test_over_long_line_outside_any_request_is_named_as_the_reason_of_the_restart(tmp_path, start_host):
    """The over-long line is a ping answer: no handler call is waiting to report it, so the supervisor's
    own account of the death must say why it killed the runner."""
    host = start_host(fake_project(tmp_path, "longping"), env={
        **SMALL_LIMITS, "FAKE_LINE_BYTES": "200000", "STEPPE_PING_INTERVAL": "0.3", "STEPPE_PING_TIMEOUT": "5"})
    first = wait_until(lambda: fake_runner(host)["pid"], 10, "a live fake runner")  # None while it is down
    wait_until(lambda: fake_runner(host)["pid"] not in (first, None), 10, "a new fake runner")
    text = host.wait_log(f"fake runner (pid {first}) died")
    died = next(x for x in text.splitlines() if f"fake runner (pid {first}) died" in x)
    assert "over the 90000-byte limit" in died, f"the host does not say why it restarted the runner: {died!r}"
    still_serving(host)


def test_runner_ignoring_a_cancel_is_killed_after_the_grace(tmp_path, start_host):
    host = start_host(fake_project(tmp_path, "hang", ', "infrastructure": {"handler": {"timeout": 0.5}}'),
                      env={"STEPPE_CANCEL_GRACE": "0.3"})
    first = fake_runner(host)["pid"]
    assert httpx.get(f"{host.url}/fake", timeout=10).status_code == 504
    host.wait_log("fake runner ignored a cancel for 0.3s; restarting it")
    wait_until(lambda: fake_runner(host)["pid"] not in (first, None), 10, "a new fake runner")
    still_serving(host)


def test_runner_answering_a_cancel_within_the_grace_is_kept(tmp_path, start_host):
    host = start_host(fake_project(tmp_path, "slowcancel", ', "infrastructure": {"handler": {"timeout": 0.5}}'),
                      env={"STEPPE_CANCEL_GRACE": "2", "FAKE_CANCEL_DELAY": "0.3"})
    first = fake_runner(host)["pid"]
    assert httpx.get(f"{host.url}/fake", timeout=10).status_code == 504
    time.sleep(2.5)  # past the grace: a kill would have happened by now
    assert "ignored a cancel" not in host.logs()
    assert fake_runner(host)["pid"] == first and fake_runner(host)["restarts"] == 0
    assert httpx.get(f"{host.url}/fake", timeout=10).status_code == 504  # the same runner still takes calls
    still_serving(host)
