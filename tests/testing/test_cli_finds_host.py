"""The CLI finds the running host through .steppe/host.json; --version; one-line usage errors (exit 2);
a closed pipe is a clean exit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import RunningHost, free_port, write_project

STEP = """
exports.config = { type: 'event', name: 'Noted', subscribes: ['note'], emits: [] }
exports.handler = async () => {}
"""


def steppe(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "steppe.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=60)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    root = write_project(tmp_path_factory.mktemp("found"), {"steps/noted.step.js": STEP})
    host = RunningHost(root, [], None, port=free_port()).wait_ready()  # not on the default port 3000
    yield host
    host.stop()


def test_host_json_says_where_the_host_is(running: RunningHost) -> None:
    info = json.loads((running.root / ".steppe" / "host.json").read_text())
    assert info["url"] == running.url and info["pid"] == running.proc.pid and info["mode"] == "dev"


def test_admin_commands_use_it_without_port(running: RunningHost) -> None:
    done = steppe("dlq", "list", cwd=running.root)
    assert done.returncode == 0 and "the dead-letter store is empty" in done.stdout, done.stderr
    done = steppe("emit", "--topic", "note", "--data", '{"a": 1}', "--root", str(running.root))
    assert done.returncode == 0 and json.loads(done.stdout)["deliveries"] == 1, done.stderr
    done = steppe("list", "--root", str(running.root))
    assert done.returncode == 0 and "(from the running host)" in done.stdout


def test_closed_pipe_is_a_clean_exit(running: RunningHost) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "steppe.cli", "list", "--json", "--root", str(running.root)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before anything is written, like `| head` that already exited
    err = proc.stderr.read().decode()
    assert proc.wait(60) == 0 and err == ""


def test_version_and_one_line_usage_errors() -> None:
    done = steppe("--version")
    assert done.returncode == 0 and done.stdout.startswith("steppe ")
    done = steppe("dlq", "explode")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "invalid choice" in done.stderr
    help_text = steppe("dlq", "--help").stdout
    for action in ("list", "show ID", "replay ID...", "drop ID..."):
        assert action in help_text


def test_host_json_is_removed_at_stop_and_a_stale_one_is_ignored(tmp_path: Path) -> None:
    root = write_project(tmp_path, {"steps/noted.step.js": STEP})
    host = RunningHost(root, [], None, port=free_port()).wait_ready()
    path = root / ".steppe" / "host.json"
    assert path.exists()
    host.stop()
    assert not path.exists()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    path.write_text(json.dumps({"url": host.url, "pid": gone.pid, "mode": "dev"}))  # a host killed with -9
    port = free_port()
    (root / "steppe.toml").write_text(f"port = {port}\n")
    done = steppe("dlq", "list", "--root", str(root))
    assert done.returncode == 1 and f"127.0.0.1:{port}" in done.stderr
