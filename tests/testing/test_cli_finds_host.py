"""The CLI finds the running host through .steppe/host.json; --version; one-line usage errors (exit 2);
a closed pipe is a clean exit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from conftest import RunningHost, free_port, wait_until, write_project

STEP = """
exports.config = { type: 'event', name: 'Noted', subscribes: ['note'], emits: [] }
exports.handler = async () => {}
"""
CRON = """
exports.config = { type: 'cron', name: 'Nightly', cron: '0 0 1 1 *', emits: [] }
exports.handler = async (ctx) => {
  const runs = (await ctx.state.get('nightly', 'runs')) || 0
  if (runs >= 2) throw new Error('ran enough')
  await ctx.state.set('nightly', 'runs', runs + 1)
}
"""


def steppe(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "steppe.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=60)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    root = write_project(tmp_path_factory.mktemp("found"), {"steps/noted.step.js": STEP, "steps/nightly.step.js": CRON})
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


def test_state_commands(running: RunningHost) -> None:
    root = str(running.root)
    assert steppe("state", "set", "orders", "o-1", '{"item": "tea"}', "--root", root).returncode == 0
    done = steppe("state", "get", "orders", "o-1", "--root", root)
    assert done.returncode == 0 and json.loads(done.stdout) == {"item": "tea"}
    assert "orders" in steppe("state", "list", "--root", root).stdout.split()
    assert json.loads(steppe("state", "list", "orders", "--root", root).stdout)["values"] == [{"item": "tea"}]
    assert json.loads(steppe("state", "delete", "orders", "o-1", "--root", root).stdout) == {"deleted": True}
    assert steppe("state", "get", "orders", "o-1", "--root", root).returncode == 1
    bad = steppe("state", "set", "orders", "o-2", "not json", "--root", root)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert steppe("state", "get", "orders", "--root", root).returncode == 2


def test_cron_run_runs_the_handler_now(running: RunningHost) -> None:
    root = str(running.root)
    for runs in (1, 2):
        done = steppe("cron", "run", "Nightly", "--root", root)
        assert done.returncode == 0 and "Nightly ran" in done.stdout, done.stderr
        assert json.loads(steppe("state", "get", "nightly", "runs", "--root", root).stdout) == runs
    failed = steppe("cron", "run", "Nightly", "--root", root)
    assert failed.returncode == 1 and "ran enough" in failed.stderr
    unknown = steppe("cron", "run", "Daily", "--root", root)
    assert unknown.returncode == 1 and "Nightly" in unknown.stderr


def test_events_list_and_replay_unrouted(running: RunningHost) -> None:
    root = str(running.root)
    emitted = json.loads(steppe("emit", "--topic", "nobody.listens", "--data", "7", "--root", root).stdout)
    assert emitted["deliveries"] == 0
    listing = steppe("events", "--root", root)
    assert listing.returncode == 0 and f"unrouted {emitted['id']}  nobody.listens" in listing.stdout
    again = steppe("events", "replay", emitted["id"], "--root", root)
    assert json.loads(again.stdout) == {"replayed": 1, "deliveries": 0}  # still nobody: kept as unrouted
    assert emitted["id"] in steppe("events", "list", "--root", root).stdout
    assert steppe("events", "replay", "--root", root).returncode == 2
    # a step that subscribes arrives (dev reloads): the replayed event now reaches it
    (running.root / "steps" / "listener.step.js").write_text(
        "exports.config = { type: 'event', name: 'Listener', subscribes: ['nobody.listens'], emits: [] }\n"
        "exports.handler = async (n, ctx) => { await ctx.state.set('heard', 'n', n) }\n")
    wait_until(lambda: any(s["name"] == "Listener" and s["status"] == "ok" for s in
                           httpx.get(f"{running.url}/__steppe/steps").json()["steps"]), 20, "the new step")
    again = steppe("events", "replay", "--all", "--root", root)
    assert json.loads(again.stdout) == {"replayed": 1, "deliveries": 1}
    wait_until(lambda: httpx.get(f"{running.url}/__steppe/state/heard/n").status_code == 200, 10, "delivery")
    assert httpx.get(f"{running.url}/__steppe/state/heard/n").json()["value"] == 7


def _write_host_files(data_dir: str, rounds: int) -> None:  # in a process of its own (its own pid)
    import io

    from steppe.hostfile import write_host_file
    from steppe.logs import LogBook
    from steppe.settings import load_settings

    out = io.StringIO()
    settings = load_settings(Path(data_dir), mode="start", port=free_port())
    for _ in range(rounds):
        write_host_file(settings, LogBook(out=out))
    assert out.getvalue() == "", out.getvalue()


def test_hosts_started_together_on_one_folder_each_write_the_host_file(tmp_path: Path) -> None:
    """Seen in CI: three hosts started at once on one project folder (a test of many hosts) shared one
    temporary file for host.json; one host's rename took the file another was about to rename, and
    that host failed after saying it listened."""
    import multiprocessing

    (tmp_path / ".steppe").mkdir()
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_write_host_files, args=(str(tmp_path), 300)) for _ in range(3)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(60)
    assert [w.exitcode for w in writers] == [0, 0, 0]
    assert json.loads((tmp_path / ".steppe" / "host.json").read_text())["mode"] == "start"
    assert sorted(p.name for p in (tmp_path / ".steppe").iterdir()) == ["host.json"]


def test_a_host_file_that_cannot_be_written_is_a_warning_and_the_host_serves(tmp_path: Path) -> None:
    root = write_project(tmp_path, {"steps/noted.step.js": STEP})
    (root / ".steppe" / "host.json" / "in-the-way").mkdir(parents=True)
    host = RunningHost(root, [], None).wait_ready()
    try:
        assert "could not write" in host.wait_log("CLI commands need --port to find this host")
        assert httpx.get(f"{host.url}/__steppe/health", timeout=10).status_code == 200
    finally:
        host.stop()
    assert host.proc.returncode == 0
