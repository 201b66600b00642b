"""Redis refusing or not answering under a running host, on a redis-server of this module's own: clients
get 507 (Redis out of memory, as a full disk gives with SQLite) or 503 (Redis not answering) JSON with the
reason, from step routes and admin routes alike, never a bare 500; health says so; all of it ends once
Redis accepts writes again, with no restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis_support import RedisProcess

from conftest import RunningHost, wait_until, write_project

PROJECT = {
    "steps/keep_step.py": """
        config = {"type": "api", "name": "Keep", "path": "/keep/:key", "method": "POST", "emits": ["kept"]}

        async def handler(req, ctx):
            await ctx.state.set("kept", req["pathParams"]["key"], req["body"]["value"])
            await ctx.emit({"topic": "kept", "data": {"key": req["pathParams"]["key"]}})
            return {"status": 200, "body": {"kept": req["pathParams"]["key"]}}
    """,
    "steps/read_step.py": """
        config = {"type": "api", "name": "Read", "path": "/keep/:key", "method": "GET", "emits": []}

        async def handler(req, ctx):
            return {"status": 200, "body": {"value": await ctx.state.get("kept", req["pathParams"]["key"])}}
    """,
    "steps/slow_step.py": """
        import asyncio

        config = {"type": "event", "name": "Slow", "subscribes": ["slow"], "emits": ["kept"],
                  "infrastructure": {"queue": {"maxRetries": 50}}}

        async def handler(data, ctx):
            await asyncio.sleep(1.5)  # the test fills Redis meanwhile
            await ctx.state.set("slow", "done", "y" * 200_000)
            await ctx.emit({"topic": "kept", "data": {"key": "slow"}})
    """,
    "steps/kept_step.py": """
        config = {"type": "event", "name": "Kept", "subscribes": ["kept"], "emits": []}

        async def handler(data, ctx):
            ctx.logger.info("kept", {"key": data["key"]})
    """,
}

BIG = "x" * 200_000  # Redis at its maxmemory refuses a value this size


@pytest.fixture
def redis_with_little_memory(tmp_path: Path) -> Iterator[RedisProcess]:
    data = tmp_path / "redis-data"
    data.mkdir()
    server = RedisProcess(data).start("--maxmemory", "4mb", "--maxmemory-policy", "noeviction")
    yield server
    server.stop()


@pytest.fixture
def host(tmp_path: Path, redis_with_little_memory: RedisProcess) -> Iterator[RunningHost]:
    root = write_project(tmp_path / "app", PROJECT)
    running = RunningHost(root, [], {"STEPPE_BACKEND": "redis", "STEPPE_REDIS_URL": redis_with_little_memory.url},
                          mode="start").wait_ready(60)
    yield running
    running.stop()


def health(host: RunningHost) -> dict:
    return httpx.get(f"{host.url}/__steppe/health", timeout=5).json()


def test_redis_out_of_memory_answers_507_with_the_reason_and_recovers(
        host: RunningHost, redis_with_little_memory: RedisProcess) -> None:
    statuses = [httpx.post(f"{host.url}/keep/k{i}", json={"value": BIG}, timeout=10).status_code for i in range(40)]
    assert 507 in statuses and 500 not in statuses, statuses
    full = httpx.post(f"{host.url}/keep/more", json={"value": BIG}, timeout=10)
    assert full.status_code == 507, full.text
    body = full.json()
    assert (body["error"], body["type"]) == ("Insufficient Storage", "StorageFull") and body["traceId"]
    assert "Redis" in body["message"] and "maxmemory" in body["message"], body
    emitted = host.admin_post("/__steppe/emit", json={"topic": "kept", "data": {"pad": BIG}}, timeout=10)
    assert emitted.status_code == 507 and emitted.json()["type"] == "StorageFull", emitted.text
    reasons = wait_until(lambda: [r for r in health(host)["reasons"] if "memory" in r["reason"]], 10,
                         "health naming Redis's memory")
    assert reasons[0]["status"] == "degraded"
    assert "Keep" in host.logs() and "maxmemory" in host.logs()
    redis_with_little_memory.cli("CONFIG", "SET", "maxmemory", "0")  # room again: writes work, no restart
    ok = httpx.post(f"{host.url}/keep/after", json={"value": BIG}, timeout=10)
    assert ok.status_code == 200, ok.text
    after = host.admin_post("/__steppe/emit", json={"topic": "kept", "data": {"pad": BIG}}, timeout=10)
    assert after.status_code == 202, after.text
    wait_until(lambda: health(host)["status"] == "ok", 15, "health ok once Redis accepts writes again")


def test_redis_not_answering_gives_503_with_the_reason_on_step_and_admin_routes(
        host: RunningHost, redis_with_little_memory: RedisProcess) -> None:
    assert httpx.post(f"{host.url}/keep/a", json={"value": 1}, timeout=10).status_code == 200
    redis_with_little_memory.shutdown_nosave()
    answers = {
        "step write": httpx.post(f"{host.url}/keep/b", json={"value": 2}, timeout=10),
        "step read": httpx.get(f"{host.url}/keep/a", timeout=10),
        "admin emit": host.admin_post("/__steppe/emit", json={"topic": "kept", "data": {}}, timeout=10),
        "admin state": host.admin_get("/__steppe/state/kept", timeout=10),
    }
    for what, r in answers.items():
        assert r.status_code == 503, (what, r.status_code, r.text)
        body = r.json()
        assert (body["type"], body["error"]) == ("StorageUnavailable", "Service Unavailable"), (what, body)
        assert "Redis" in body["message"] and body["traceId"], (what, body)
    assert health(host)["status"] == "failing"
    redis_with_little_memory.start("--maxmemory", "4mb", "--maxmemory-policy", "noeviction")
    wait_until(lambda: httpx.post(f"{host.url}/keep/c", json={"value": 3}, timeout=10).status_code == 200, 20,
               "the step writing again once Redis is back")
    assert httpx.get(f"{host.url}/keep/c", timeout=10).json() == {"value": 3}


def test_a_delivery_whose_writes_redis_refuses_is_retried_and_done_once_redis_has_room(
        host: RunningHost, redis_with_little_memory: RedisProcess) -> None:
    assert host.admin_post("/__steppe/emit", json={"topic": "slow", "data": {}}, timeout=10).status_code == 202
    statuses = [httpx.post(f"{host.url}/keep/k{i}", json={"value": BIG}, timeout=10).status_code for i in range(40)]
    assert 507 in statuses, statuses
    host.wait_log("StorageFull", 15)  # the delivery's write was refused: it failed, to be tried again
    redis_with_little_memory.cli("CONFIG", "SET", "maxmemory", "0")
    done = wait_until(lambda: (r := host.admin_get("/__steppe/state/slow/done", timeout=5)).status_code == 200 and r,
                      60, "the delivery done once Redis has room")
    assert len(done.json()["value"]) == 200_000
    wait_until(lambda: health(host)["status"] == "ok", 15, "health ok once Redis accepts writes again")
    assert host.admin_get("/__steppe/dlq", timeout=5).json() == []
    slow = [line for line in host.logs().splitlines() if '"step":"Slow"' in line or "Slow" in line]
    assert not [line for line in host.logs().splitlines() if '"source":"host"' not in line and "Traceback" in line], \
        slow  # no fault outside the handlers (the worker's own), whose stacks the host logs unattributed
