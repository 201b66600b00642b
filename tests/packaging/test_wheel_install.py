"""`pip install steppe` from a wheel, outside the repo, with no `node` on PATH: the wheel carries the runners
(steppe/_runners, with the Node runner's node_modules), the templates and the Workbench; Node comes from
nodejs-bin, Ruby from the machine. Builds the wheel with `python -m build --wheel`, installs it into a fresh
venv under tmp, creates the multilang template and runs it with `steppe dev`: a POST crosses TS → Python → Ruby.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from conftest import REPO, free_port, need, wait_until

pytestmark = pytest.mark.timeout(240)

ZOD = REPO / "examples" / "polyglot-hello" / "node_modules" / "zod"  # the project's own dependency


@dataclass
class Installed:
    wheel: Path
    venv: Path
    env: dict[str, str]  # PATH: the venv's bin and a folder with only `ruby`; no node, no npm

    def steppe(self, *args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.venv / "bin" / "steppe"), *args], cwd=cwd, env=self.env,
                              capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    ruby = need("ruby")
    tmp = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp / "dist"), str(REPO)],
                           capture_output=True, text=True, timeout=180)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = (tmp / "dist").glob("steppe-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=60)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
                         capture_output=True, text=True, timeout=180)
    assert pip.returncode == 0, pip.stderr[-3000:]
    tools = tmp / "tools"
    tools.mkdir()
    (tools / "ruby").symlink_to(ruby)
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "NODE_PATH", "STEPPE_RUNNERS_DIR", "STEPPE_COMMAND")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{tools}"
    assert shutil.which("node", path=env["PATH"]) is None and shutil.which("npm", path=env["PATH"]) is None
    return Installed(wheel, venv, env)


def test_the_wheel_carries_the_package_runners_templates_and_workbench(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    host_modules = {"steppe/" + p.relative_to(REPO / "host").as_posix() for p in (REPO / "host").rglob("*.py")
                    if "templates" not in p.parts and "__pycache__" not in p.parts}
    assert host_modules - names == set(), "host modules missing from the wheel (add the package in pyproject.toml)"
    for runner in ("python/runner.py", "python/steppe_runner/server.py", "ruby/runner.rb",
                   "ruby/lib/steppe_runner/runner.rb", "node/runner.js", "node/lib/loader.js",
                   "node/node_modules/sucrase/package.json", "node/node_modules/zod-to-json-schema/package.json"):
        assert f"steppe/_runners/{runner}" in names, runner
    assert {"steppe/static/workbench/index.html", "steppe/static/client.js", "steppe/testing/npm/index.js",
            "steppe/testing/ruby/steppe/testing.rb",
            "steppe/templates/multilang/steps/place_order.step.ts", "steppe/templates/_common/gitignore"} <= names
    assert any(re.fullmatch(r"steppe/static/workbench/assets/index-.*\.js", n) for n in names)
    # no caches, tests, npm bookkeeping or TypeScript sources of the vendored packages
    unwanted = [n for n in names if "__pycache__" in n or n.endswith(".pyc") or "/node_modules/.bin/" in n
                or n.startswith("steppe/tests/") or n.endswith("/setup.sh")
                or ("/node_modules/" in n and n.endswith((".ts", ".map")))]
    assert unwanted == []
    assert installed.wheel.stat().st_size < 5_000_000


@pytest.fixture(scope="module")
def dev(installed: Installed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, int]]:
    work = tmp_path_factory.mktemp("outside")
    assert REPO not in work.parents
    created = installed.steppe("create", "-t", "multilang", "app", "--no-install", cwd=work)
    assert created.returncode == 0, created.stdout + created.stderr
    app = work / "app"
    (app / "node_modules").mkdir()
    (app / "node_modules" / "zod").symlink_to(ZOD)  # what `npm install` in the project would have put there
    port = free_port()
    log = (work / "dev.log").open("w")
    proc = subprocess.Popen([str(installed.venv / "bin" / "steppe"), "dev", "--port", str(port)], cwd=app,
                            env=installed.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert proc.poll() is None, (work / "dev.log").read_text()
        try:
            return httpx.get(f"{url}/__steppe/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(ready, 60, "steppe dev to be ready")
        yield app, url, proc.pid
        logged = (work / "dev.log").read_text()
        # every step loaded, and Node 18.4's start-up warning about its loader flag does not reach the log
        assert "4 step(s) ready" in logged and "ERROR" not in logged and "ExperimentalWarning" not in logged, logged
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()


def test_version_and_package_come_from_the_venv(installed: Installed, tmp_path: Path) -> None:
    version = installed.steppe("--version", cwd=tmp_path)
    assert version.returncode == 0 and re.fullmatch(r"steppe \S+\n", version.stdout), version.stdout + version.stderr
    where = subprocess.run([str(installed.venv / "bin" / "python"), "-c", "import steppe; print(steppe.__file__)"],
                           cwd=tmp_path, env=installed.env, capture_output=True, text=True, timeout=30)
    assert Path(where.stdout.strip()).is_relative_to(installed.venv), where.stdout + where.stderr


def test_multilang_template_runs_from_the_wheel_without_node_on_path(installed: Installed,
                                                                   dev: tuple[Path, str, int]) -> None:
    app, url, pid = dev
    placed = httpx.post(f"{url}/orders", json={"item": "tea", "qty": 2}, timeout=30)
    assert placed.status_code == 202, placed.text
    order_id = placed.json()["id"]

    def shipped() -> dict | None:  # the installed CLI finds the host through app/.steppe/host.json
        got = installed.steppe("state", "get", "orders", order_id, cwd=app)
        if got.returncode != 0:
            return None
        value = json.loads(got.stdout)
        return value if value.get("status") == "shipped" else None

    # TS placed it (item, qty), Python priced it (3.5 × 2), Ruby shipped it
    order = wait_until(shipped, 30, "the order to be priced by Python and shipped by Ruby", step=0.3)
    assert order == {"id": order_id, "item": "tea", "qty": 2, "total": 7.0, "status": "shipped"}

    # every runner ran from the installed package, Node being nodejs-bin's
    import psutil

    site = installed.venv / "lib"
    commands = [c.cmdline() for c in psutil.Process(pid).children(recursive=True)]
    runners = {Path(arg).parent.name: cmd for cmd in commands for arg in cmd
               if re.search(r"/steppe/_runners/(node|python|ruby)/runner\.(js|py|rb)$", arg)}
    assert set(runners) == {"node", "python", "ruby"}, commands
    for cmd in runners.values():
        assert any(Path(arg).is_relative_to(site) for arg in cmd if "_runners" in arg), cmd
    assert Path(runners["node"][0]).is_relative_to(site) and "nodejs" in Path(runners["node"][0]).parts

    page = httpx.get(f"{url}/__steppe/ui/", timeout=10)
    assert page.status_code == 200 and "<html" in page.text.lower(), page.text[:300]
    asset = re.search(r'/__steppe/ui/assets/([\w.-]+\.js)', page.text)
    assert asset and httpx.get(f"{url}/__steppe/ui/assets/{asset.group(1)}", timeout=10).status_code == 200



def test_the_ruby_test_helpers_load_from_the_installed_package(installed: Installed, tmp_path: Path) -> None:
    """`ruby -I <steppe.testing.RUBY_LIB>` as docs/testing.md says, with the runner's classes from steppe/_runners."""
    lib = subprocess.run([str(installed.venv / "bin" / "python"), "-c",
                          "import steppe.testing as t; print(t.RUBY_LIB)"], capture_output=True, text=True, timeout=60)
    assert lib.returncode == 0 and str(installed.venv) in lib.stdout, lib.stdout + lib.stderr
    script = ("require 'steppe/testing'; ctx = Steppe::Testing::MockContext.new(config: {name: 'S', emits: ['a']}); "
              "begin; ctx.emit(topic: 'b'); rescue Steppe::HostError => e; puts e.type; end; "
              "puts $LOADED_FEATURES.grep(/steppe_runner/).first")
    done = subprocess.run([need("ruby"), "-I", lib.stdout.strip(), "-e", script], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    refused, runner_file = done.stdout.split()
    assert refused == "UndeclaredTopic" and "/steppe/_runners/ruby/lib/steppe_runner/" in runner_file, done.stdout


def test_create_installs_the_projects_npm_packages_with_nodejs_bins_npm(installed: Installed, tmp_path: Path) -> None:
    """Without --no-install and with no npm on PATH, `steppe create` uses nodejs-bin's npm (from the registry),
    then writes the types; nothing on stderr reads like a failure."""
    created = installed.steppe("create", "-t", "multilang", "app", cwd=tmp_path, timeout=180)
    assert created.returncode == 0, created.stdout + created.stderr
    app = tmp_path / "app"
    assert json.loads((app / "node_modules" / "zod" / "package.json").read_text())["version"] == "4.1.12"
    assert (app / "node_modules" / "steppe-testing" / "package.json").is_file()
    assert "PlaceOrder" in (app / "types.d.ts").read_text()
    assert "Warning" not in created.stderr and "error" not in created.stderr.lower(), created.stderr
    # the newcomer's last step: the generated project's own tests (node:test, the steppe-testing tester
    # starting the installed `steppe dev`) pass; they need a node with node:test's hooks (Node ≥ 18.8), so the
    # machine's node runs them while steppe keeps using nodejs-bin's for its runner
    node = need("node")
    env = {**installed.env, "PATH": f"{installed.env['PATH']}{os.pathsep}{Path(node).parent}"}
    tested = subprocess.run([node, "--test", "tests/"], cwd=app, env=env, capture_output=True, text=True,
                            timeout=180)
    assert tested.returncode == 0 and "# fail 0" in tested.stdout, tested.stdout + tested.stderr
