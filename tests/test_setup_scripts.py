"""The setup split: README's first command installs only what running needs and waits for a busy apt;
the test and benchmark tools come with scripts/test (via scripts/setup-tests)."""

from __future__ import annotations

import os
import re
import stat
import subprocess

from conftest import REPO


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_setup_plans_only_what_running_needs():
    plan = run("bash", "scripts/setup", "--dry-run")
    assert plan.returncode == 0, plan.stderr
    out = plan.stdout
    assert re.search(r"^debian: ruby \(missing", out, re.M)
    assert "venv: .venv with: -e .\n" in out
    assert "pip: examples/polyglot-hello/requirements.txt" in out  # pydantic: the example's Python step needs it
    assert re.search(r"^npm: runners/node\b", out, re.M) and re.search(r"^npm: examples/polyglot-hello\b", out, re.M)
    for test_only in ("wrk", "chromium", "[test]", "npm: tests/", "npm: workbench"):
        assert test_only not in out, out


def test_test_command_plans_the_test_and_benchmark_tools():
    assert "bash scripts/setup-tests" in (REPO / "scripts/test").read_text()
    plan = run("bash", "scripts/setup-tests", "--dry-run")
    assert plan.returncode == 0, plan.stderr
    out = plan.stdout
    assert re.search(r"^debian: wrk chromium \(missing", out, re.M)
    assert "venv: .venv with: -e .[test]" in out
    assert re.search(r"^npm: workbench\b", out, re.M) and re.search(r"^npm: tests/js\b", out, re.M)
    assert "npm: runners/node" not in out and "npm: examples/" not in out


def test_readme_first_command_runs_as_written():
    readme = (REPO / "README.md").read_text()
    first = re.search(r"```sh\n(.*?)\n```", readme, re.S)
    assert first and first.group(1) == "./scripts/setup && .venv/bin/steppe dev --root examples/polyglot-hello"
    setup = run("./scripts/setup")  # against this checkout's venv: everything it needs is there already
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert setup.stdout.rstrip().endswith("setup: done")
    assert "wrk" not in setup.stdout + setup.stderr and "chromium" not in setup.stdout + setup.stderr
    assert run(".venv/bin/steppe", "--help").returncode == 0


def test_apt_install_waits_for_a_busy_apt_and_goes_on(tmp_path):
    """This shared machine's real dpkg lock must not be taken by a test: an apt-get that reports the lock as
    held stands in for a busy apt (the script's own logic, the bounded wait and the lock timeout, is real)."""
    calls = tmp_path / "calls"
    fake = tmp_path / "bin" / "apt-get"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n'
                    'echo "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 1 (apt-get)" >&2\n'
                    "exit 100\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    env = {"PATH": f"{fake.parent}:{os.environ['PATH']}", "STEPPE_APT_WAIT": "6"}
    if os.getuid() != 0:  # not root: it says what is missing and goes on without calling apt
        r = run("bash", "scripts/apt-install", "ruby", env=env)
        assert r.returncode == 0 and "missing ruby" in r.stderr and not calls.exists()
        return
    r = run("bash", "scripts/apt-install", "ruby", env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "apt stayed busy for 6s; not installing ruby" in r.stderr
    tries = calls.read_text().splitlines()
    assert len(tries) >= 2 and all("DPkg::Lock::Timeout=6" in t and t.endswith("update") for t in tries)
