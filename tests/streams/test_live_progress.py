"""The live-progress example end to end, without a browser: Python API step → TypeScript step streaming
progress → Ruby step streaming the result, watched by a `websockets` client on the stream wire."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

from conftest import REPO, RunningHost, need

EXAMPLE = REPO / "examples" / "live-progress"


def copy_example(tmp_path: Path) -> Path:
    root = tmp_path / "live-progress"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("node_modules", ".steppe"))
    return root


def start_example(tmp_path: Path, start_host: Any) -> RunningHost:
    need("ruby")
    host: RunningHost = start_host(copy_example(tmp_path))
    steps = httpx.get(f"{host.url}/__steppe/steps").json()["steps"]
    assert {s["name"]: (s["language"], s["status"]) for s in steps} == {
        "StartJob": ("python", "ok"), "RunJob": ("node", "ok"), "PublishResult": ("ruby", "ok")}
    return host


async def watch_job(host: RunningHost, items: int, timeout: float = 30) -> tuple[str, list[dict], list[dict]]:
    """Start a job, join its progress and result items; return the job id and what arrived of each."""
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{host.url}/jobs", json={"items": items}, timeout=10)
    assert r.status_code == 202, r.text
    job_id = r.json()["jobId"]
    progress: list[dict] = []
    results: list[dict] = []
    async with connect(host.url.replace("http://", "ws://") + "/") as ws:
        for id in ("progress", "result"):
            await ws.send(json.dumps({"type": "join", "data": {
                "streamName": "progress", "groupId": job_id, "id": id, "subscriptionId": id}}))
        deadline = time.monotonic() + timeout
        while not results:
            left = deadline - time.monotonic()
            assert left > 0, f"no result after {timeout}s; progress: {progress}\n{host.logs()}"
            message = json.loads(await asyncio.wait_for(ws.recv(), left))
            assert message["streamName"] == "progress" and message["groupId"] == job_id, message
            assert message["event"]["type"] in ("sync", "create", "update"), message
            (progress if message["id"] == "progress" else results).append(message)
    return job_id, progress, results


def fresh(messages: list[dict]) -> list[dict]:
    """The items a client keeps: like the clients, drop a message older than the last one kept."""
    kept: list[dict] = []
    for message in messages:
        if kept and message["timestamp"] < kept[-1]["timestamp"]:
            continue
        kept.append(message)
    return [m["event"]["data"] for m in kept]


def test_progress_streams_to_100_then_the_ruby_result_arrives(tmp_path: Path, start_host: Any) -> None:
    host = start_example(tmp_path, start_host)
    job_id, progress, results = asyncio.run(watch_job(host, items=20))

    items = fresh(progress)
    percents = [item["percent"] for item in items]
    assert percents == sorted(percents), percents  # monotonic
    assert items[-1] == {"done": 20, "total": 20, "percent": 100, "id": "progress"}
    assert all(item["total"] == 20 and item["percent"] == item["done"] * 100 // 20 for item in items), items
    # streamed step by step as the Node step works (about 100 ms an item), not just once at the end
    assert len(set(percents)) >= 5, percents
    assert progress[0]["event"]["type"] == "sync"

    assert len(results) == 1, results
    result = results[0]
    assert result["id"] == "result" and result["event"]["type"] == "create"
    data = result["event"]["data"]
    assert data["status"] == "done" and data["id"] == "result"
    assert data["summary"].startswith("20 items processed in ") and "by node v" in data["summary"]
    assert "written by ruby " in data["summary"]
    assert result["timestamp"] >= progress[-1]["timestamp"]  # the result follows the last progress

    # the flow is one trace across the three languages
    logs = httpx.get(f"{host.url}/__steppe/logs").json()
    traces = {r.get("step"): r.get("traceId") for r in logs if r.get("msg", "").startswith("job ")}
    assert set(traces) == {"StartJob", "RunJob", "PublishResult"}, logs
    assert len(set(traces.values())) == 1

    # a late subscriber gets the final state as its sync
    async def late() -> list[dict]:
        async with connect(host.url.replace("http://", "ws://") + "/") as ws:
            await ws.send(json.dumps({"type": "join", "data": {
                "streamName": "progress", "groupId": job_id, "subscriptionId": "g"}}))
            return list(json.loads(await asyncio.wait_for(ws.recv(), 10))["event"]["data"])

    group = {item["id"]: item for item in asyncio.run(late())}
    assert group["progress"]["percent"] == 100 and group["result"]["status"] == "done"


def test_the_page_and_a_bad_request(tmp_path: Path, start_host: Any) -> None:
    host = start_example(tmp_path, start_host)
    page = httpx.get(f"{host.url}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/__steppe/client.js" in page.text and 'id="bar"' in page.text
    bad = httpx.post(f"{host.url}/jobs", json={"items": 0})
    assert bad.status_code == 400, bad.text
    assert httpx.post(f"{host.url}/jobs", json={}).status_code == 400
