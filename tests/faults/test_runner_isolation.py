"""One request must never take a language offline (issue 8, sections 2 and 5), with the supervisor driven
in-process (a real Project, real runner processes from tests/fakes/fake_runner.py) where host health and
timing are the subject: a runner's children, its raw writes to fd 1, a crash loop, an oversized message,
a runner answering under another name, stream and auth discovery. The real runners, through a real host
over HTTP, are in test_runner_output.py.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import write_project
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


async def test_an_unknown_transport_is_named(tmp_path):
    loaded = await load_fake(tmp_path, "ok", transport="pipes")
    try:
        step = next(iter(loaded.project.steps.values()))
        assert step.status == "unavailable"
        assert step.unavailable == "[runners.fake] transport must be \"fds\" or \"stdio\", not 'pipes'"
    finally:
        await loaded.project.stop(2.0)


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
