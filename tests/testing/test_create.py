"""`steppe create`: every template is written, and its own tests (written with steppe.testing /
steppe-testing) pass against a real `steppe dev`. Created with --no-install and pointed at the repo's
installed packages for speed; the typescript template also once with its real `npm install` (and tsc),
the python one with its real .venv."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, need
from steppe.testing import RUBY_LIB

ZOD = REPO / "examples" / "polyglot-hello" / "node_modules" / "zod"
JS_TESTING = REPO / "host" / "testing" / "npm"


def _steppe(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "steppe.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def _run_tests(project: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STEPPE_COMMAND": f"{sys.executable} -m steppe.cli"}
    if (project / "package.json").exists():
        return subprocess.run([need("node"), "--test", "tests/"], cwd=project, capture_output=True, text=True,
                              timeout=240, env=env)
    return subprocess.run([sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider"], cwd=project,
                          capture_output=True, text=True, timeout=240, env=env)


@pytest.mark.parametrize("template", ["typescript", "javascript", "python", "ruby", "multilang"])
def test_template_is_created_and_its_tests_pass(tmp_path: Path, template: str) -> None:
    if template in ("ruby", "multilang"):
        need("ruby")
    project = tmp_path / "app"
    done = _steppe("create", "-t", template, str(project), "--no-install")
    assert done.returncode == 0, done.stderr
    for name in ("steppe.toml", ".gitignore", ".env.example", "README.md"):
        assert (project / name).is_file(), name
    assert "{{" not in (project / "README.md").read_text()
    if (project / "package.json").exists():
        assert '"zod": "4.1.12"' in (project / "package.json").read_text()
        (project / "node_modules").mkdir()
        (project / "node_modules" / "zod").symlink_to(ZOD)
        (project / "node_modules" / "steppe-testing").symlink_to(JS_TESTING)
    else:
        assert (project / "requirements.txt").is_file()
    listed = _steppe("list", "--root", str(project), "--json")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    tests = _run_tests(project)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert " passed" in tests.stdout or "# fail 0" in tests.stdout
    if template == "ruby":  # and its minitest unit test of a step, on the mock context of steppe/testing
        unit = subprocess.run([need("ruby"), "-I", str(RUBY_LIB), "tests/remember_test.rb"], cwd=project,
                              capture_output=True, text=True, timeout=120)
        assert unit.returncode == 0, unit.stdout + unit.stderr
        assert " 0 failures, 0 errors" in unit.stdout and " 0 runs" not in unit.stdout, unit.stdout


def test_typescript_template_with_a_real_npm_install(tmp_path: Path) -> None:
    """npm install for real; the types are generated and the template's steps compile against them."""
    npm = need("npm")
    project = tmp_path / "app"
    done = _steppe("create", "-t", "typescript", str(project))
    assert done.returncode == 0, done.stdout + done.stderr
    assert (project / "node_modules" / "zod" / "package.json").is_file()
    assert "SayHello: (req: ApiRequest<{" in (project / "types.d.ts").read_text()
    tsc = subprocess.run([npm, "install", "--no-save", "--no-audit", "--no-fund", "--loglevel=error",
                          "typescript@5.9.3"], cwd=project, capture_output=True, text=True, timeout=240)
    assert tsc.returncode == 0, tsc.stderr
    tsc = subprocess.run([str(project / "node_modules" / ".bin" / "tsc"), "-p", "."], cwd=project,
                         capture_output=True, text=True, timeout=120)
    assert tsc.returncode == 0, tsc.stdout + tsc.stderr
    tests = _run_tests(project)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "# fail 0" in tests.stdout


def test_usage_errors_exit_2_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    done = _steppe("create", str(tmp_path / "taken"), "--no-install")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "not an empty folder" in done.stderr
    assert _steppe("create", "-t", "cobol", str(tmp_path / "x")).returncode == 2


def test_python_template_with_a_real_venv(tmp_path: Path) -> None:
    """The project .venv gets requirements.txt, and its pytest imports steppe.testing from this Steppe."""
    project = tmp_path / "app"
    done = _steppe("create", "-t", "python", "app", cwd=tmp_path)  # a relative folder, as a user types it
    assert done.returncode == 0, done.stdout + done.stderr
    env = {**os.environ, "STEPPE_COMMAND": f"{sys.executable} -m steppe.cli"}
    tests = subprocess.run([str(project / ".venv" / "bin" / "pytest"), "tests", "-q", "-p", "no:cacheprovider"],
                           cwd=project, capture_output=True, text=True, timeout=240, env=env)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "3 passed" in tests.stdout


def test_interactive_choices_with_arrow_keys(tmp_path: Path) -> None:
    """`steppe create -i` in a terminal: type the folder, pick the third template with ↓↓ Enter."""
    import pty
    import select
    import time

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "steppe.cli", "create", "-i", "--no-install"], cwd=tmp_path,
                            stdin=slave, stdout=slave, stderr=slave, env={**os.environ, "TERM": "xterm"})
    os.close(slave)
    seen = b""

    def wait_for(needle: bytes) -> None:
        nonlocal seen
        deadline = time.monotonic() + 30
        while needle not in seen and time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                try:
                    seen += os.read(master, 4096)
                except OSError:
                    break
        assert needle in seen, seen.decode(errors="replace")

    try:
        wait_for(b"Project folder")
        os.write(master, b"\x15myapp\r")  # ^U clears the suggested name
        wait_for(b"Template")
        os.write(master, b"\x1b[B\x1b[B\r")  # typescript → javascript → python
        wait_for(b"next:")
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    assert sorted(p.name for p in (tmp_path / "myapp" / "steps").iterdir()) == ["hello_step.py", "remember_step.py"]


def test_the_next_line_can_be_pasted_into_a_shell_when_the_folder_has_a_space(tmp_path: Path) -> None:
    """Seen: `next: cd /tmp/my app && steppe dev`: pasted, `cd` went to /tmp/my and failed."""
    target = tmp_path / "my app"
    out = subprocess.run([sys.executable, "-m", "steppe.cli", "create", str(target), "-t", "python", "--no-install"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    [line] = [ln for ln in out.stdout.splitlines() if ln.startswith("next: ")]
    command = line.removeprefix("next: ").split(" && ")[0]
    went = subprocess.run(["sh", "-c", f"{command} && pwd"], capture_output=True, text=True, timeout=10)
    assert went.returncode == 0 and went.stdout.strip() == str(target), (line, went)
