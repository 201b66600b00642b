"""The README's 5-minute tour, run as written: its code blocks become a project that must work."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx

from conftest import REPO, need

ZOD = REPO / "examples" / "polyglot-hello" / "node_modules" / "zod"


def tour_project(root: Path) -> Path:
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"\(`(steps/[^`]+)`[^\n]*\n```\w+\n(.*?)```", readme, re.S)
    assert len(blocks) == 5, [b[0] for b in blocks]
    for rel, code in blocks:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(code)
    (root / "node_modules").mkdir()
    (root / "node_modules" / "zod").symlink_to(ZOD)
    return root


CHECK = """
config = {"type": "api", "name": "Check", "path": "/check/:id", "method": "GET", "emits": []}

async def handler(req, context):
    oid = req["pathParams"]["id"]
    return {"status": 200, "body": {"charge": await context.state.get("charges", oid),
                                    "shipment": await context.streams.shipments.get("all", oid)}}
"""


def test_tour_runs_as_written(tmp_path, start_host):
    need("ruby")
    root = tour_project(tmp_path)
    (root / "steps" / "check_step.py").write_text(CHECK)  # reads back what the tour's steps wrote
    host = start_host(root)
    steps = {s["name"]: s["status"] for s in httpx.get(f"{host.url}/__steppe/steps").json()["steps"]}
    assert steps == {"CreateOrder": "ok", "Charge": "ok", "Ship": "ok", "Report": "ok", "Check": "ok"}
    r = httpx.post(f"{host.url}/orders", json={"item": "tea", "qty": 2})
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["item"] == "tea" and order["qty"] == 2
    assert httpx.post(f"{host.url}/orders", json={"item": "tea", "qty": 0}).status_code == 400
    deadline = time.monotonic() + 15
    while (body := httpx.get(f"{host.url}/check/{order['id']}").json())["shipment"] is None:
        assert time.monotonic() < deadline, host.logs()
        time.sleep(0.05)
    assert body == {"charge": {"amount": 10},
                    "shipment": {"item": "tea", "status": "shipped", "id": order["id"]}}
