"""WebSocket memory is bounded. Seen: host RSS grew ~2 MB per 1,000 open/join/close cycles (61 → 186 MB
over 12,000), and a slow consumer was cut only at 1,000 queued messages, so with 300 KB items the host
grew by 268 MB first. The per-socket cost was permessage-deflate (zlib state for every socket, freed
into a fragmented heap); the send queue is now bounded in bytes as well as in messages."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from conftest import RunningHost, wait_until, write_project

pytestmark = pytest.mark.timeout(300)

FILES = {
    "steps/chat_stream.py": 'config = {"name": "chat", "schema": {"type": "object"}}\n',
    "steps/fill_step.py": """
        config = {"type": "api", "name": "Fill", "path": "/fill", "method": "POST", "emits": []}

        async def handler(req, context):
            blob = "x" * 300_000
            for i in range(int(req["queryParams"]["n"])):
                await context.streams.chat.set("big", f"item-{i}", {"n": i, "blob": blob})
            return {"status": 200, "body": {"ok": True}}
    """,
}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory):
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc to read the host's memory")
    root = write_project(tmp_path_factory.mktemp("wsmem"), FILES)
    running = RunningHost(root, [], None, mode="start")
    running.wait_ready()
    yield running
    running.stop()


async def _cycle(url: str, i: int) -> None:
    # a real client, which offers permessage-deflate as browsers do
    async with connect(url, open_timeout=30) as ws:
        await ws.send(json.dumps({"type": "join", "data": {"streamName": "chat", "groupId": f"g{i % 50}",
                                                           "subscriptionId": "s"}}))
        assert json.loads(await ws.recv())["event"]["type"] == "sync"


async def test_twenty_thousand_socket_cycles_leave_host_memory_flat(host: RunningHost):
    url = f"ws://127.0.0.1:{host.port}/"
    pid = host.proc.pid
    limit = asyncio.Semaphore(50)  # sockets open at once

    async def run(i: int) -> None:
        async with limit:
            await _cycle(url, i)

    await asyncio.gather(*(run(i) for i in range(2_000)))
    await asyncio.sleep(0.5)
    after_warmup, fds_warm = rss_mb(pid), fds(pid)
    for start in range(2_000, 20_000, 2_000):
        await asyncio.gather(*(run(i) for i in range(start, start + 2_000)))
    await asyncio.sleep(0.5)
    grown = rss_mb(pid) - after_warmup
    assert grown < 10, f"host RSS grew {grown:.1f} MB over 18,000 socket cycles after the first 2,000"
    assert fds(pid) <= fds_warm + 5


async def test_a_slow_consumer_is_dropped_by_bytes_long_before_its_message_count(host: RunningHost):
    url = f"ws://127.0.0.1:{host.port}/"
    pid = host.proc.pid
    join = json.dumps({"type": "join", "data": {"streamName": "chat", "groupId": "big", "subscriptionId": "s"}})
    before = rss_mb(pid)
    async with connect(url, max_queue=1, max_size=None) as slow, connect(url, max_size=None) as fast:
        for ws in (slow, fast):
            await ws.send(join)
            assert json.loads(await ws.recv())["event"]["type"] == "sync"
        received = 0

        async def read_fast() -> None:
            nonlocal received
            while received < 200:
                if json.loads(await fast.recv())["event"]["type"] in ("create", "update"):
                    received += 1

        reader = asyncio.create_task(read_fast())
        peak = 0.0

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max(peak, rss_mb(pid))
                await asyncio.sleep(0.05)

        watcher = asyncio.create_task(watch())
        # 200 items of 300 KB: 60 MB of messages, far below 1,000 messages but far above 8 MiB
        async with httpx.AsyncClient(timeout=60) as http:
            assert (await http.post(f"{host.url}/fill", params={"n": 200})).status_code == 200
        await asyncio.wait_for(reader, 60)  # the reading client got every change
        watcher.cancel()
        host.wait_log("stream socket dropped: more than 8388608 bytes waiting to be sent", 10)
        # the slow client finds its socket closed once it reads what reached it
        started = time.monotonic()
        with pytest.raises(ConnectionClosed):
            while time.monotonic() - started < 30:
                await asyncio.wait_for(slow.recv(), 30)
    assert peak - before < 80, f"host RSS peaked {peak - before:.0f} MB above its start"
    wait_until(lambda: rss_mb(pid) - before < 80, 10, "host memory back down")
