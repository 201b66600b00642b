"""A Node without `module.register` (nodejs-bin ships 18.4; it is what runs JS/TS when PATH has no `node`):
the host gives it the runner's ES-module hooks with --experimental-loader, so TypeScript in a
`"type": "module"` project, extensionless imports and `.js` steps all load; Node's notice about that flag
stays out of the log while a step's own warnings still reach it; import.meta.dirname/filename work.
Uses the repo's runners, no wheel."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import RunningHost, write_project

PROJECT = {
    "package.json": '{"type": "module"}\n',
    "steps/lib/total.ts": """
        export const total = (qty: number, price: number): number => qty * price
        """,
    "steps/price.step.ts": """
        import { total } from './lib/total'
        process.emitWarning('a step warning', 'DeprecationWarning', 'DEP_STEPPE_TEST')
        export const config = { type: 'api', name: 'Price', path: '/price', method: 'POST', emits: [] }
        export const handler = async (req: { body: { qty: number } }) =>
          ({ status: 200,
             body: { total: total(req.body.qty, 3.5), node: process.version, file: import.meta.filename } })
        """,
    "steps/ping.step.js": """
        export const config = { type: 'api', name: 'Ping', path: '/ping', method: 'GET', emits: [] }
        export const handler = async () => ({ status: 200, body: { dirname: import.meta.dirname } })
        """,
}


def _nodejs_bin_node() -> Path:
    import nodejs  # type: ignore[import-untyped]  # a dependency of steppe: always installed

    return Path(nodejs.__file__).parent / "bin" / "node"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    root = write_project(tmp_path_factory.mktemp("old-node"), PROJECT)
    path = str(Path(sys.executable).parent)  # the venv's bin: python and steppe, no node
    assert shutil.which("node", path=path) is None
    env = {"PATH": path, "NODE_PATH": ""}
    h = RunningHost(root, [], {**{k: v for k, v in os.environ.items() if k != "PATH"}, **env}).wait_ready()
    yield h
    h.stop()


def test_typescript_es_modules_load_under_nodejs_bin(host: RunningHost) -> None:
    r = httpx.post(f"{host.url}/price", json={"qty": 2}, timeout=30)
    assert r.status_code == 200, host.logs()
    assert r.json()["total"] == 7.0
    # import.meta.dirname / filename (Node >= 20.11) are set for an older Node too
    assert r.json()["file"] == str(host.root / "steps" / "price.step.ts")
    assert httpx.get(f"{host.url}/ping", timeout=10).json() == {"dirname": str(host.root / "steps")}
    import psutil

    cmd = psutil.Process(host.runner_pid("node")).cmdline()
    assert Path(cmd[0]) == _nodejs_bin_node(), cmd
    major, minor = (int(n) for n in r.json()["node"].lstrip("v").split(".")[:2])
    assert ("--experimental-loader" in cmd) == ((major, minor) < (18, 19) or major == 19), cmd


def test_only_the_loader_notice_is_kept_out_of_the_log(host: RunningHost) -> None:
    logged = host.wait_log("DEP_STEPPE_TEST")
    assert "a step warning" in logged and "ExperimentalWarning" not in logged and "ERROR" not in logged, logged
