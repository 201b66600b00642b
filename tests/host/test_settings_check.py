"""Settings the host cannot use stop `steppe start` with one line naming the setting and where it was set.

Seen: STEPPE_RUNNER_CONCURRENCY=-5 started a host that never ran a delivery, STEPPE_API_TIMEOUT=0 one that
answered every API request 504, STEPPE_LOG_LEVEL=loud was taken as info, and STEPPE_PORT=abc stopped the start
with `error: invalid literal for int() with base 10: 'abc'`, naming no setting."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from conftest import write_project


@pytest.mark.parametrize(("env", "toml", "line"), [
    ({"STEPPE_RUNNER_CONCURRENCY": "-5"}, "",
     "error: runner_concurrency (STEPPE_RUNNER_CONCURRENCY) must be a whole number above 0, got -5"),
    ({"STEPPE_API_TIMEOUT": "0"}, "", "error: api_timeout (STEPPE_API_TIMEOUT) must be a number above 0, got 0.0"),
    ({"STEPPE_LOG_LEVEL": "loud"}, "", "error: log_level (STEPPE_LOG_LEVEL) must be 'debug' or 'info' or 'warn' or "
                                       "'warning' or 'error', got 'loud'"),
    ({"STEPPE_PORT": "abc"}, "", "error: port (STEPPE_PORT) must be a whole number, got 'abc'"),
    ({}, "drain_grace = -1\n", "error: drain_grace (steppe.toml) must be a number, 0 or more, got -1"),
    ({}, "backend = \"kafka\"\n", "error: backend (steppe.toml) must be '' or 'sqlite' or 'memory' or 'redis', "
                                  "got 'kafka'"),
], ids=["runner-concurrency", "api-timeout", "log-level", "port", "toml-drain-grace", "toml-backend"])
def test_a_setting_the_host_cannot_use_stops_the_start_with_one_line(tmp_path, env, toml, line):
    files = {"steps/a_step.py": "config = {}\n"}
    if toml:
        files["steppe.toml"] = toml
    root = write_project(tmp_path, files)
    out = subprocess.run([sys.executable, "-m", "steppe.cli", "start", "--root", str(root)],
                         capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin", **env})
    assert out.returncode == 2, out
    assert out.stderr.strip().splitlines() == [line]


@pytest.mark.parametrize("command", ["start", "dev", "list", "doctor"])
def test_a_project_folder_that_does_not_exist_is_named_and_not_made(tmp_path, command):
    """Seen: `steppe dev --root /nonexistent` (a typo) made that folder and its `.steppe/`, then served an empty
    project; `steppe list` listed nothing and `steppe doctor` called its three missing databases ok."""
    missing = tmp_path / "mistyped"
    out = subprocess.run([sys.executable, "-m", "steppe.cli", command, "--root", str(missing)],
                         capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 2, out
    assert out.stderr.strip().splitlines() == [f"error: the project folder {missing} does not exist"]
    assert not missing.exists()


def test_an_address_the_host_cannot_listen_on_stops_the_start_with_one_line(tmp_path):
    """Seen: a port in use, an unknown host name or an address of another machine ended the start with
    uvicorn's `ERROR: [Errno 98] error while attempting to bind ...` (plain text, in `start`'s JSON log) after
    the steps had loaded, naming no setting."""
    root = write_project(tmp_path, {"steps/a_step.py": 'config = {"type": "event", "name": "A", "subscribes": ["t"]}\n'
                                                       "async def handler(data, context):\n    pass\n"})
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        for args, expected in [
            (["--port", str(taken.getsockname()[1])], f"cannot listen on 127.0.0.1:{taken.getsockname()[1]}: "
             "Address already in use; another process listens there"),
            (["--host", "999.1.1.1"], "cannot listen on 999.1.1.1:3000: the host name does not resolve"),
            (["--host", "192.0.2.1"], "cannot listen on 192.0.2.1:3000: Cannot assign requested address; set `host`"),
        ]:
            out = subprocess.run([sys.executable, "-m", "steppe.cli", "start", "--root", str(root), *args],
                                 capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
            assert out.returncode == 3, out
            errors = [json.loads(line) for line in out.stderr.splitlines() if '"level":"error"' in line]
            assert [e["msg"][:len("cannot start: " + expected)] for e in errors] == ["cannot start: " + expected], out
            assert "Errno" not in out.stderr, out.stderr
    finally:
        taken.close()
