"""Which interpreter runs which steps: a project virtualenv for Python, nodejs-bin when PATH has no Node,
and Ruby steps reported unavailable (the rest serving) when there is no Ruby."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from conftest import write_project

WHO = {
    "steps/who_step.py": """
        import sys
        config = {"type": "api", "name": "WhoPy", "path": "/py", "method": "GET", "emits": []}
        async def handler(req, context):
            return {"status": 200, "body": {"python": sys.executable, "prefix": sys.prefix}}
    """,
    "steps/who.step.ts": """
        export const config = { type: 'api', name: 'WhoNode', path: '/node', method: 'GET', emits: [] }
        export const handler = async () => ({ status: 200, body: { node: process.version, exe: process.execPath } })
    """,
    "steps/who_step.rb": """
        def config
          { type: 'api', name: 'WhoRuby', path: '/rb', method: 'GET', emits: [] }
        end
        def handler(req, context)
          { status: 200, body: { ruby: RUBY_VERSION } }
        end
    """,
}


def test_project_virtualenv_runs_python_steps(tmp_path, start_host):
    root = write_project(tmp_path / "app", WHO)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / ".venv")], check=True)
    host = start_host(root)
    body = httpx.get(f"{host.url}/py").json()
    assert Path(body["prefix"]).resolve() == (root / ".venv").resolve()


def test_without_node_or_ruby_on_path(tmp_path, start_host):
    root = write_project(tmp_path / "app", WHO)
    bare = tmp_path / "bin"  # a PATH with Python only
    bare.mkdir()
    (bare / "python3").symlink_to(sys.executable)
    host = start_host(root, env={"PATH": str(bare)})
    node = httpx.get(f"{host.url}/node").json()
    assert "nodejs" in node["exe"] and node["node"].startswith("v18.")  # the nodejs-bin package's Node
    assert httpx.get(f"{host.url}/py").status_code == 200
    # its config cannot be read without Ruby, so it is listed by its file
    steps = {s["path"]: s for s in httpx.get(f"{host.url}/__steppe/steps").json()["steps"]}
    ruby = steps["steps/who_step.rb"]
    assert ruby["status"] == "unavailable" and "Ruby not found on PATH" in ruby["error"]
    assert httpx.get(f"{host.url}/rb").status_code == 503  # its route says the step cannot run here (not 404)
    out = subprocess.run([sys.executable, "-m", "steppe.cli", "list", "--root", str(root)], capture_output=True,
                         text=True, env={**os.environ, "PATH": str(bare)}, timeout=60)
    assert "unavailable" in out.stdout and "Ruby not found on PATH" in out.stdout


def test_a_built_in_runners_own_command_keeps_its_file_types(tmp_path, start_host):
    """Seen: `[runners.ruby] command = [...]` without `extensions` left Ruby files with no runner ('no runner
    handles .rb files'), though configuration.md says such a table replaces the built-in command."""
    runners = Path(__file__).resolve().parents[2] / "runners"
    root = write_project(tmp_path / "app", {**WHO, "steppe.toml": f"""
        [runners.ruby]
        command = ["ruby", "{runners / 'ruby' / 'runner.rb'}"]
        [runners.python]
        command = ["{sys.executable}", "{runners / 'python' / 'runner.py'}"]
    """})
    host = start_host(root)
    assert httpx.get(f"{host.url}/rb").json()["ruby"]
    assert httpx.get(f"{host.url}/py").json()["python"] == sys.executable
    assert httpx.get(f"{host.url}/node").status_code == 200
