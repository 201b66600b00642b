"""One request must never take a language offline (issue 8, section 2): a runner's children, its raw
writes to fd 1, a crash loop, an oversized message, a runner answering under another name.

The supervisor is driven in-process (a real Project, real runner processes from tests/fakes/fake_runner.py)
where host health and timing are the subject; the real runners are driven through a real host over HTTP.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import wait_until, write_project
from steppe.health import Health
from steppe.project import Project, ProjectError, invoke_params
from steppe.rpc import RpcError
from steppe.runners import InvocationContext, RunnerRegistry, RunnerSupervisor, RunnerUnavailable

FAKE = Path(__file__).resolve().parents[1] / "fakes" / "fake_runner.py"
HELLO = '{"type": "api", "name": "FakeHello", "path": "/fake", "method": "GET", "emits": []}'
REQUEST = {"body": None, "headers": {}, "pathParams": {}, "queryParams": {}, "rawBody": ""}


class Loaded:
    """A project of fake steps loaded in-process, with what its supervisor reported."""

    def __init__(self, project: Project, health: Health, logs: list[dict[str, Any]]) -> None:
        self.project, self.health, self.logs = project, health, logs

    @property
    def sup(self) -> RunnerSupervisor:
        return self.project.supervisors["fake"]

    def step(self) -> Any:
        return next(s for s in self.project.steps.values() if s.name == "FakeHello")

    async def invoke(self, data: Any = None, timeout: float = 20) -> Any:
        step = self.step()
        params = invoke_params(step, "api", REQUEST if data is None else data, "t-1")
        return await self.sup.invoke(params, InvocationContext(step, "t-1", []), timeout)


async def load_fake(root: Path, mode: str, transport: str = "fds", env: dict[str, str] | None = None,
                    files: dict[str, str] | None = None, **options: float) -> Loaded:
    write_project(root, {"steps/hello.step.fake": HELLO, **(files or {})})
    registry = RunnerRegistry(extra={"fake": {"command": [sys.executable, str(FAKE), mode], "extensions": [".fake"],
                                              "transport": transport, "env": env or {}}}, project_root=root)
    health, logs = Health(), []

    async def host_call(ctx: Any, method: str, params: dict[str, Any]) -> Any:
        return None

    project = Project(root, registry, host_call=host_call, on_log=lambda params, ctx: logs.append(params),
                      on_event=lambda level, msg: logs.append({"level": level, "msg": msg, "source": "supervisor"}),
                      runner_options={"ping_interval": 0.2, "ping_timeout": 5.0, **options}, health=health)
    await project.load()
    return Loaded(project, health, logs)


async def until(pred: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := pred():
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def stopped(loaded: Loaded, check: Callable[[], Awaitable[None]]) -> None:
    try:
        await check()
    finally:
        await loaded.project.stop(2.0)


def gone(pid: int) -> bool:
    """The process has exited (a zombie waiting for its reaper counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


@pytest.mark.parametrize("transport", ["fds", "stdio"])
async def test_a_child_outliving_its_runner_does_not_keep_the_language_down(tmp_path, transport):
    """Seen: a handler forked a child, then the runner exited: every request got 504 for the child's
    lifetime, and health showed the dead pid."""
    pid_file = tmp_path / "child.pid"
    loaded = await load_fake(tmp_path, "forkexit", transport, {"FAKE_CHILD_PID_FILE": str(pid_file)})

    async def check() -> None:
        first = loaded.sup.process.pid  # type: ignore[union-attr]
        started = time.monotonic()
        with pytest.raises(RpcError, match="runner exited with status 3"):
            await loaded.invoke()
        assert time.monotonic() - started < 5, "the runner's death was noticed only when its child ended"
        child = int(pid_file.read_text())
        await until(lambda: gone(child), 5, "the orphaned child to be killed with the runner's group")
        await until(lambda: loaded.sup.process.pid not in (first, None), 10, "a new runner")  # type: ignore[union-attr]
        assert (await loaded.invoke())["status"] == 200

    await stopped(loaded, check)


async def test_a_dead_runner_shows_no_pid(tmp_path):
    pid_file = tmp_path / "child.pid"
    loaded = await load_fake(tmp_path, "forkexit", env={"FAKE_CHILD_PID_FILE": str(pid_file)},
                             restart_cap=0.05)

    async def check() -> None:
        process = loaded.sup.process
        assert process and process.pid
        with pytest.raises(RpcError):
            await loaded.invoke()
        assert process.pid is None and process.os_pid

    await stopped(loaded, check)


async def test_a_crash_looping_runner_fails_fast_reports_degraded_and_comes_back_by_itself(tmp_path):
    """Seen: a runner crashing five times in a minute was never restarted: 503 until a manual restart,
    while health said ok."""
    counter = tmp_path / "deaths"
    loaded = await load_fake(tmp_path, "crashloop", env={"FAKE_COUNTER_FILE": str(counter), "FAKE_CRASHES": "8"},
                             restart_cap=1.0)

    async def check() -> None:
        assert loaded.health.status == "ok"
        with pytest.raises(RpcError):
            await loaded.invoke()  # its first death; each restart then dies at start, 7 times in all
        problem = await until(lambda: next((r for r in loaded.health.as_dict()["reasons"]  # type: ignore[attr-defined]
                                            if "crash-looping" in r["reason"]), None), 15, "a crash-looping report")
        assert problem["component"] == "runner.fake" and problem["status"] == "degraded"
        assert "the fake runner is down and crash-looping: it crashed" in problem["reason"]
        assert "crashed" in (loaded.step().unhealthy or "") and loaded.step().status == "unhealthy"
        started = time.monotonic()
        with pytest.raises(RunnerUnavailable) as refused:
            await loaded.invoke()
        assert time.monotonic() - started < 0.5 and refused.value.retry_after and refused.value.retry_after >= 1
        # it never gives up: once the runner stops crashing it is back, and so are health and its steps
        await until(lambda: loaded.health.status == "ok" and loaded.step().unhealthy is None, 20,
                    "health and the step to recover")
        assert (await loaded.invoke())["status"] == 200
        assert loaded.sup.restarts == 1 and int(counter.read_text()) == 8
        assert any("fake runner restarted" in entry["msg"] for entry in loaded.logs)

    await stopped(loaded, check)


async def test_raw_writes_to_fd_1_do_not_touch_the_protocol(tmp_path):
    loaded = await load_fake(tmp_path, "fd1")

    async def check() -> None:
        answers = await asyncio.gather(*(loaded.invoke() for _ in range(5)))
        assert [a["status"] for a in answers] == [200] * 5
        stray = await until(lambda: [e for e in loaded.logs if "stray bytes on fd 1" in e.get("msg", "")], 5,
                            "the stray bytes in the logs")
        assert stray[0]["source"] == "runner-stdout" and stray[0]["level"] == "info"
        assert not [e for e in loaded.logs if e.get("source") == "runner-protocol"]

    await stopped(loaded, check)


async def test_a_message_over_the_line_limit_is_refused_before_it_reaches_the_runner(tmp_path):
    loaded = await load_fake(tmp_path, "ok", max_line=100_000)

    async def check() -> None:
        pid = loaded.sup.process.pid  # type: ignore[union-attr]
        for _ in range(6):
            with pytest.raises(RpcError, match="over the runner's 100000-byte line limit") as refused:
                await loaded.invoke({**REQUEST, "headers": {"x-big": "h" * 150_000}})
            assert refused.value.type == "PayloadTooLarge"
        assert (await loaded.invoke())["status"] == 200
        assert loaded.sup.process.pid == pid and loaded.sup.restarts == 0  # type: ignore[union-attr]

    await stopped(loaded, check)


async def test_a_runner_answering_under_another_name_does_not_start(tmp_path):
    loaded = await load_fake(tmp_path, "wrongname")
    try:
        step = next(iter(loaded.project.steps.values()))
        assert step.status == "unavailable"
        assert "registered as 'fake' answered the handshake as language 'notfake'" in (step.unavailable or "")
    finally:
        await loaded.project.stop(2.0)


async def test_stream_and_auth_files_are_found_for_a_registered_extension(tmp_path):
    """Seen: a new language's stream was never found (UnknownStream) and its project-root steppe_auth file
    was silently ignored, so any token was accepted."""
    loaded = await load_fake(tmp_path, "ok", files={"steps/chat.stream.fake": '{"name": "chat"}',
                                                    "steps/rooms_stream.fake": '{"name": "rooms"}',
                                                    "steppe_auth.fake": "{}"})
    try:
        assert set(loaded.project.streams) == {"chat", "rooms"}
        assert loaded.project.auth and loaded.project.auth.path == tmp_path / "steppe_auth.fake"
    finally:
        await loaded.project.stop(2.0)


@pytest.mark.parametrize("name, text", [("steppe_auth.fake", "not json"), ("steppe.auth.py", "def broken(:\n")])
async def test_an_auth_file_that_does_not_load_stops_the_start(tmp_path, name, text):
    with pytest.raises(ProjectError, match=f"the auth hook {name} cannot be loaded: .*"):
        loaded = await load_fake(tmp_path, "ok", files={name: text})
        await loaded.project.stop(2.0)


def test_limits_a_runner_would_refuse_stop_the_start_with_one_line(tmp_path):
    import subprocess

    write_project(tmp_path, {"steps/a_step.py": "config = {}\n"})
    out = subprocess.run([sys.executable, "-m", "steppe.cli", "start", "--root", str(tmp_path), "--port", "1"],
                         capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", "STEPPE_MAX_LINE": "1000000", "STEPPE_MAX_BODY": "200000"})
    assert out.returncode == 2
    [line] = out.stderr.strip().splitlines()
    assert line.startswith("error: max_line (1000000 bytes) is below the largest API invoke the limits allow")
    assert "raise max_line or lower max_body / max_headers" in line


# --- the real runners, through a real host -------------------------------------------------------------

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
    from conftest import RunningHost, need

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


async def test_an_unknown_transport_is_named(tmp_path):
    loaded = await load_fake(tmp_path, "ok", transport="pipes")
    try:
        step = next(iter(loaded.project.steps.values()))
        assert step.status == "unavailable"
        assert step.unavailable == "[runners.fake] transport must be \"fds\" or \"stdio\", not 'pipes'"
    finally:
        await loaded.project.stop(2.0)


def test_the_start_up_log_names_each_runner_with_its_version(stray_host):
    text = stray_host.logs()
    for name in ("python", "node", "ruby"):
        assert f"{name} runner 0.1.0 started (pid " in text
    assert "fds transport" in text


async def test_a_runner_command_that_does_not_exist_is_named_and_leaks_no_pipes(tmp_path):
    write_project(tmp_path, {"steps/hello.step.fake": HELLO})
    registry = RunnerRegistry(extra={"fake": {"command": [str(tmp_path / "no-such-runner")], "extensions": [".fake"],
                                              "transport": "fds"}}, project_root=tmp_path)

    health = Health()

    async def load() -> Project:
        project = Project(tmp_path, registry, host_call=None, on_log=lambda p, c: None,  # type: ignore[arg-type]
                          on_event=lambda level, msg: None, health=health)
        await project.load()
        return project

    await load()  # the first start may open what stays open (the child watcher)
    fds = len(list(Path("/proc/self/fd").iterdir()))
    for _ in range(3):
        project = await load()
    assert len(list(Path("/proc/self/fd").iterdir())) == fds
    step = next(iter(project.steps.values()))
    assert step.status == "unavailable" and "fake runner failed to start" in (step.unavailable or "")
    assert health.as_dict()["reasons"] == [{
        "component": "runner.fake", "status": "degraded", "since": pytest.approx(time.time(), abs=30),
        "reason": "the fake runner could not start, so 1 file(s) are unavailable (see `steppe list`)"}]


@pytest.mark.parametrize("end", ["restart", "stop"])
async def test_children_a_handler_started_end_with_their_runner(tmp_path, end):
    pid_file = tmp_path / "child.pid"
    loaded = await load_fake(tmp_path, "forkstay", env={"FAKE_CHILD_PID_FILE": str(pid_file)})
    try:
        assert (await loaded.invoke())["status"] == 200
        child = int(pid_file.read_text())
        assert not gone(child)
        if end == "restart":
            await loaded.sup.restart()  # a dev reload of a helper module
            await until(lambda: gone(child), 5, "the handler's child to end with its runner's restart")
            assert (await loaded.invoke())["status"] == 200
    finally:
        await loaded.project.stop(2.0)
    await until(lambda: gone(child), 5, "the handler's child to end with its runner")
