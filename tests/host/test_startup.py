"""What `steppe start` does before its first answer: which modules it imports before the runners spawn,
which runtime probes run (and when a cached probe answer is reused)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from steppe.create import JS_TESTING
from steppe.runners.probe_cache import probe_output
from steppe.runners.registry import RunnerRegistry
from steppe.testing import NPM_PACKAGE


def _fake_runtime(tmp_path: Path, answer: str) -> tuple[Path, Path]:
    """An executable that prints `answer` and counts its runs in a file beside it."""
    runs = tmp_path / "runs"
    binary = tmp_path / "fake-runtime"
    binary.write_text(f"#!/bin/sh\necho x >> {runs}\necho '{answer}'\n")
    binary.chmod(0o755)
    return binary, runs


def test_probe_answer_is_reused_until_the_binary_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    binary, runs = _fake_runtime(tmp_path, "20.1.0 function")
    assert probe_output(str(binary), ["-p", "v"]) == "20.1.0 function\n"
    assert probe_output(str(binary), ["-p", "v"]) == "20.1.0 function\n"
    assert runs.read_text().count("x") == 1  # the second answer came from the cache
    assert probe_output(str(binary), ["-e", "other"]) == "20.1.0 function\n"
    assert runs.read_text().count("x") == 2  # other arguments: another probe
    binary.write_text(binary.read_text().replace("20.1.0", "22.11.0"))  # an upgraded binary: size and mtime
    os.utime(binary, ns=(0, 1))
    assert probe_output(str(binary), ["-p", "v"]) == "22.11.0 function\n"
    assert runs.read_text().count("x") == 3


def test_probe_without_a_writable_cache_still_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    binary, runs = _fake_runtime(tmp_path, "3.1.2")
    assert probe_output(str(binary), ["-e", "v"]) == "3.1.2\n"
    assert probe_output(str(binary), ["-e", "v"]) == "3.1.2\n"
    assert runs.read_text().count("x") == 2


def test_which_runner_handles_a_file_needs_no_probe(tmp_path: Path) -> None:
    registry = RunnerRegistry(project_root=tmp_path)
    assert registry.language_of(tmp_path / "a.step.ts") == "node"
    assert registry.language_of(tmp_path / "a_step.rb") == "ruby"
    assert registry.language_of(tmp_path / "a_step.py") == "python"
    assert registry.language_of(tmp_path / "notes.md") is None
    specs = registry._specs  # the probes are still pending: nothing ran node or ruby yet
    assert specs["node"].probe is not None and specs["ruby"].probe is not None
    node = asyncio.run(registry.resolve("node"))
    assert node.probe is None and node.command[-1].endswith("runner.js") and node.unavailable is None
    assert registry.get("ruby").command[-1].endswith("runner.rb")


def test_start_imports_no_http_stack_before_the_runners() -> None:
    """What `steppe start` imports before early_start spawns the runners: FastAPI, uvicorn, httpx and redis-py
    come later (in a thread, beside the runners) or never; so do the host's own bus, queues, stores and
    telemetry (app.py), and http.client (urllib.request pulls it in)."""
    code = ("import sys, steppe.cli, steppe.serve; "
            "print(' '.join(m for m in ('fastapi', 'uvicorn', 'httpx', 'redis', 'pydantic', 'rich', 'steppe.app', "
            "'steppe.bus', 'steppe.queue', 'steppe.telemetry', 'starlette.responses', 'http.client') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == ""


def test_an_idle_host_imports_no_optional_heavyweights() -> None:
    """Everything a started host has loaded (its web layer too) leaves out prometheus_client (the first
    scrape imports it), jsonschema (the first step with a schema) and croniter (the first cron step): together
    ~25 MB of an idle host's RSS, and croniter runs `file -b` when imported."""
    code = ("import sys, steppe.cli, steppe.serve, steppe.http_server, steppe.web.app, steppe.web.http_protocol; "
            "print(' '.join(m for m in ('prometheus_client', 'jsonschema', 'croniter') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == ""


def _step_writing_its_runners_pid(root: Path) -> Path:
    """A project of one Python API step whose module writes its runner's pid to the file returned."""
    pid_file = root / "runner.pid"
    (root / "steps").mkdir()
    (root / "steps" / "hello_step.py").write_text(
        f"import os\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "config = {'type': 'api', 'name': 'Hello', 'path': '/hello', 'method': 'GET', 'emits': []}\n"
        "async def handler(req, ctx):\n    return {'status': 200, 'body': {}}\n")
    return pid_file


def _gone(pid: int) -> bool:
    import psutil

    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def test_runners_started_early_are_stopped_when_the_host_cannot_be_built(tmp_path: Path) -> None:
    """`steppe start` spawns its runners before it builds the Host (early_start.py): when building the Host
    fails (here `.steppe` is a file, so the data folder cannot be made), the command fails as before and
    the runner it already started does not outlive it."""
    pid_file = _step_writing_its_runners_pid(tmp_path)
    (tmp_path / ".steppe").write_text("not a folder")
    out = subprocess.run([sys.executable, "-m", "steppe.cli", "start", "--root", str(tmp_path), "--port", "0"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "error:" in out.stderr
    pid = int(pid_file.read_text())  # the runner had loaded the step before the host gave up
    assert _gone(pid)


def test_a_port_in_use_exits_3_with_the_reason_and_stops_the_runners(tmp_path: Path) -> None:
    """The HTTP server cannot start after the host has: the command exits 3 (uvicorn's start-up failure),
    the log says why (and never that it listened), and the runner that had loaded the step is stopped in
    order, not left behind."""
    import socket

    pid_file = _step_writing_its_runners_pid(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run([sys.executable, "-m", "steppe.cli", "dev", "--root", str(tmp_path), "--port", str(port)],
                             capture_output=True, text=True, timeout=60)
    assert out.returncode == 3, out.stdout + out.stderr
    said = out.stdout + out.stderr
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in said
    assert "shutting down" in said and "listening on" not in said
    pid = int(pid_file.read_text())
    assert _gone(pid)


def test_create_points_at_the_packaged_js_helpers() -> None:
    assert JS_TESTING == NPM_PACKAGE and (JS_TESTING / "package.json").is_file()


def test_collections_resume_once_started() -> None:
    """`steppe start` runs its start-up without garbage collections (cli.cmd_serve); the settle step after
    a successful start turns them back on, with the long-lived start-up objects frozen."""
    import gc

    from steppe.serve import settle_garbage_collector

    before = gc.get_threshold()
    gc.disable()
    try:
        settle_garbage_collector()
        assert gc.isenabled() and gc.get_freeze_count() > 0
    finally:
        gc.enable()
        gc.unfreeze()
        gc.set_threshold(*before)


def test_ruby_runs_without_rubygems_unless_rubyopt_may_need_them(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The Ruby runner starts with --disable-gems (it loads RubyGems itself when a project needs them), but
    not under a RUBYOPT (e.g. `-rbundler/setup` from `bundle exec`), which Ruby applies before the runner."""
    monkeypatch.delenv("RUBYOPT", raising=False)
    assert RunnerRegistry(project_root=tmp_path).get("ruby").command[1] == "--disable-gems"
    monkeypatch.setenv("RUBYOPT", "-rset")
    assert "--disable-gems" not in RunnerRegistry(project_root=tmp_path).get("ruby").command
