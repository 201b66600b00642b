"""The README's 5-minute tour, run as written: its code blocks become a project that must work."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

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
    r = httpx.post(f"{host.url}/orders", json={"item": "tea", "qty": 0})
    assert r.status_code == 400 and r.json()["errors"] == [  # zod's .positive(): said in plain words
        {"path": "/qty", "message": "expected a number greater than 0, got 0"}], r.text
    deadline = time.monotonic() + 15
    while (body := httpx.get(f"{host.url}/check/{order['id']}").json())["shipment"] is None:
        assert time.monotonic() < deadline, host.logs()
        time.sleep(0.05)
    assert body == {"charge": {"amount": 10},
                    "shipment": {"item": "tea", "status": "shipped", "id": order["id"]}}


def streams_project(root: Path) -> Path:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Streams to browsers, with auth"):]
    for _lang, code in re.findall(r"```(\w+)\n(.*?)```", section, re.S)[:4]:
        first = code.splitlines()[0]
        rel = re.search(r"(?:#|<!--)\s*([\w./]+\.(?:py|html))", first).group(1)  # type: ignore[union-attr]
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(code)
    return root


def test_readme_streams_example_runs_as_written(tmp_path, start_host):
    import asyncio

    import orjson
    import websockets

    host = start_host(streams_project(tmp_path))
    assert "/__steppe/client.js" in httpx.get(f"{host.url}/").text
    ws_url = host.url.replace("http", "ws") + "/"

    async def check() -> list[dict]:
        got = []
        async with websockets.connect(ws_url, subprotocols=["Authorization", "token-ann"]) as ws:  # type: ignore[list-item]
            for group in ("ann", "bob"):
                await ws.send(orjson.dumps({"type": "join", "data": {"streamName": "notes", "groupId": group,
                                                                     "subscriptionId": group}}).decode())
                got.append(orjson.loads(await asyncio.wait_for(ws.recv(), 5)))
            r = httpx.post(f"{host.url}/notes/ann", json={"id": "n1", "text": "hi"})
            assert r.status_code == 201 and r.json() == {"text": "hi", "id": "n1"}
            got.append(orjson.loads(await asyncio.wait_for(ws.recv(), 5)))
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            async with websockets.connect(ws_url, subprotocols=["Authorization", "token-bob"]):  # type: ignore[list-item]
                pass
        assert refused.value.response.status_code == 401
        return got

    sync, denied, created = asyncio.run(check())
    assert sync["event"] == {"type": "sync", "data": []}
    assert denied["event"]["event"]["data"]["code"] == "STREAM_ACCESS_DENIED"
    assert created["event"] == {"type": "create", "data": {"text": "hi", "id": "n1"}}
