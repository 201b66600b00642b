"""Settings the host cannot use stop `steppe start` with one line naming the setting and where it was set.

Seen: STEPPE_RUNNER_CONCURRENCY=-5 started a host that never ran a delivery, STEPPE_API_TIMEOUT=0 one that
answered every API request 504, STEPPE_LOG_LEVEL=loud was taken as info, and STEPPE_PORT=abc stopped the start
with `error: invalid literal for int() with base 10: 'abc'`, naming no setting."""

from __future__ import annotations

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
