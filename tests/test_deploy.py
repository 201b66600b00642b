"""deploy/: this machine has no Docker daemon, so the Dockerfile is linted (hadolint), the compose file's
structure is checked, and the build stage's COPY and RUN steps are replayed outside Docker into a fresh venv,
whose host then serves the example with the image's ENV (and without a `node` on PATH), healthy by the
image's own HEALTHCHECK script."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from conftest import REPO, free_port, need, wait_until

DEPLOY = REPO / "deploy"


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's stages, each a list of (instruction, arguments) with continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (DEPLOY / "Dockerfile").read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        op, _, args = line.strip().partition(" ")
        if op.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((op.upper(), args.strip()))
    return stages


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    return found if os.access(found, os.X_OK) else need("hadolint")


def test_dockerfile_passes_hadolint():
    r = subprocess.run([hadolint(), "--no-color", "--failure-threshold", "style", str(DEPLOY / "Dockerfile")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_dockerfile_is_multi_stage_non_root_and_checks_readiness():
    build, runtime = dockerfile_stages()
    assert build[0][1].endswith("AS build") and any(a.startswith("--from=build") for op, a in runtime if op == "COPY")
    user = next(a for op, a in runtime if op == "USER")
    assert user.split(":")[0].isdigit() and not user.startswith("0")
    check = next(a for op, a in runtime if op == "HEALTHCHECK")
    assert "/opt/steppe/healthcheck.py" in check
    assert "/__steppe/ready" in (DEPLOY / "healthcheck.py").read_text()
    env = " ".join(a for op, a in runtime if op == "ENV")
    assert "STEPPE_HOST=0.0.0.0" in env and "STEPPE_ADMIN_TOKEN" not in env  # the token comes at run time
    assert any("ruby" in a for op, a in runtime if op == "RUN")


def test_compose_runs_embedded_by_default_and_two_hosts_on_redis_in_its_profile():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    app, pair, redis = services["app"], services["app-redis"], services["redis"]
    assert "profiles" not in app and "STEPPE_BACKEND" not in app["environment"]
    assert ":?" in app["environment"]["STEPPE_ADMIN_TOKEN"]  # refuses to start without a token
    assert (REPO / "deploy" / app["build"]["context"] / app["build"]["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    assert pair["profiles"] == ["redis"] and redis["profiles"] == ["redis"]
    assert pair["deploy"]["replicas"] == 2 and pair["environment"]["STEPPE_BACKEND"] == "redis"
    assert pair["environment"]["STEPPE_REDIS_URL"].startswith("redis://redis:")
    assert pair["environment"]["STEPPE_ADMIN_TOKEN"] == app["environment"]["STEPPE_ADMIN_TOKEN"]
    assert pair["depends_on"]["redis"]["condition"] == "service_healthy"
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command and "--appendfsync everysec" in command


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The build stage replayed: its COPY lines into a scratch root, its RUN line there; the image's ENV."""
    need("ruby")
    build, runtime = dockerfile_stages()
    scratch = tmp_path_factory.mktemp("image")
    args = {k: v for op, a in build if op == "ARG" for k, _, v in [a.partition("=")]}

    def inside(path: str) -> Path:
        return scratch / path.lstrip("/")

    for op, a in build:
        if op == "COPY":
            *sources, dest = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], a).split()
            for source in sources:
                target = inside(dest) / Path(source).name if dest.endswith("/") else inside(dest)
                if (REPO / source).is_dir():
                    shutil.copytree(REPO / source, target, ignore=shutil.ignore_patterns("node_modules", "__pycache__"))
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(REPO / source, target)
    run = next(a for op, a in build if op == "RUN")
    command = re.sub(r"(?<![\w.])/(src|opt|app)\b", lambda m: str(inside(m.group(1))), run)
    r = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    env = {}
    for value in (a for op, a in runtime if op == "ENV"):
        for key, _, val in (pair.partition("=") for pair in value.split()):
            env[key] = re.sub(r"(?<![\w.])/(opt|app|data)\b", lambda m: str(inside(m.group(1))), val)
    return scratch, env


def test_the_build_stage_installs_a_host_that_serves_the_example_without_node_on_path(installed, tmp_path):
    scratch, image_env = installed
    tools = tmp_path / "bin"  # ruby (Debian's, as in the image) but no node: Node comes from nodejs-bin
    tools.mkdir()
    (tools / "ruby").symlink_to(need("ruby"))
    port = free_port()
    env = {**image_env, "PATH": image_env["PATH"].replace("$PATH", str(tools)), "HOME": str(tmp_path),
           "STEPPE_HOST": "127.0.0.1", "STEPPE_PORT": str(port), "STEPPE_ADMIN_TOKEN": "t" * 32}
    assert "node" not in os.listdir(tools)
    log = (tmp_path / "host.log").open("wb")
    host = subprocess.Popen([str(scratch / "opt/steppe/venv/bin/steppe"), "start", "--root", str(scratch / "app")],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    healthcheck = [str(scratch / "opt/steppe/venv/bin/python"), str(DEPLOY / "healthcheck.py")]
    try:
        wait_until(lambda: subprocess.run(healthcheck, env=env, timeout=10).returncode == 0, 40,
                   "the image's healthcheck to pass")
        steps = httpx.get(f"http://127.0.0.1:{port}/__steppe/steps",
                          headers={"authorization": f"Bearer {env['STEPPE_ADMIN_TOKEN']}"}).json()["steps"]
        assert {s["status"] for s in steps} == {"ok"} and {s["language"] for s in steps} >= {"node", "python", "ruby"}
        r = httpx.post(f"http://127.0.0.1:{port}/hello", json={"name": "container"})
        assert r.status_code == 202 and r.json()["requestId"], r.text
        assert (scratch / "data" / "state.db").exists()  # STEPPE_DATA_DIR: the image's volume
    finally:
        host.terminate()
        host.wait(15)
        log.close()
    assert subprocess.run(healthcheck, env=env, timeout=10).returncode == 1  # down: unhealthy
