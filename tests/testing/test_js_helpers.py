"""The npm package steppe-testing (host/testing/npm), installed with `npm install <path>` as a user would, run
under node:test (mock context + tester against tests/testing/orders) and under vitest (Motia's tutorial
integration test with only its import line changed, against tests/testing/email)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import psutil

from conftest import REPO, need

HERE = Path(__file__).parent
PACKAGE = REPO / "host" / "testing" / "npm"
VITEST = "vitest@3.2.4"


def _env(**extra: str) -> dict[str, str]:
    # the tester runs this interpreter's steppe; STEPPE_COMMAND is the documented way to choose one
    return {**os.environ, "STEPPE_COMMAND": f"{sys.executable} -m steppe.cli", **extra}


def _npm_install(cwd: Path, *packages: str) -> None:
    (cwd / "package.json").write_text('{"private": true, "type": "module"}\n')
    done = subprocess.run([need("npm"), "install", "--no-audit", "--no-fund", "--loglevel=error", *packages],
                          cwd=cwd, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr


def test_node_test_runner_with_the_installed_package(tmp_path: Path) -> None:
    _npm_install(tmp_path, str(PACKAGE))
    shutil.copy(HERE / "js" / "orders.test.mjs", tmp_path / "orders.test.mjs")
    done = subprocess.run([need("node"), "--test", "orders.test.mjs"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=180, env=_env(ORDERS_ROOT=str(HERE / "orders")))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "# pass 6" in done.stdout and "# fail 0" in done.stdout


def test_motia_tutorial_integration_test_runs_under_vitest(tmp_path: Path) -> None:
    shutil.copytree(HERE / "email" / "steps", tmp_path / "steps")
    _npm_install(tmp_path, str(PACKAGE), VITEST)
    shutil.copy(HERE / "js" / "integration.test.js", tmp_path / "integration.test.js")
    done = subprocess.run([str(tmp_path / "node_modules" / ".bin" / "vitest"), "run", "--globals"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=180, env=_env(CI="true"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    # the tester was made inside the test: its host stopped when that test finished (onTestFinished)
    left = [p.pid for p in psutil.process_iter(["cmdline"]) if str(tmp_path) in " ".join(p.info["cmdline"] or [])]
    assert left == []


def test_the_tutorials_unit_test_runs_with_only_its_imports_changed(tmp_path: Path) -> None:
    """processor.test.js of the tutorial (vi.fn() mocks of a one-argument event) under vitest, against a dialect
    step; only its import lines differ from the tutorial's file."""
    shutil.copytree(HERE / "processor" / "steps", tmp_path / "steps")
    _npm_install(tmp_path, VITEST)
    shutil.copy(HERE / "js" / "processor.test.js", tmp_path / "processor.test.js")
    done = subprocess.run([str(tmp_path / "node_modules" / ".bin" / "vitest"), "run"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=180, env=_env(CI="true"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    original = (REPO.parent / "shared" / "tutorial" / "processor.test.js")
    if original.is_file():  # the tutorial's own file beside the checkout: nothing but imports differs
        ours = (HERE / "js" / "processor.test.js").read_text().splitlines()
        theirs = original.read_text().splitlines()
        assert [a for a, b in zip(ours, theirs, strict=True) if a != b and not a.startswith("import ")] == []
