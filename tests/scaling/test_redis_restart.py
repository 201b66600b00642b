"""Redis going away under a running host, on a second redis-server this module starts on a free port with
its own data dir and the persistence docs/scaling.md asks for (AOF, fsync every second): `shutdown
nosave` in the middle of a burst, then a restart on the same dir, loses no accepted event. A host whose
Redis does not answer at start refuses to start, saying so."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis_support import RedisProcess

from conftest import RunningHost, free_port, wait_until, write_project

PROJECT = {
    "steps/hop_step.py": """
        import os

        config = {"type": "event", "name": "Hop", "subscribes": ["hop"], "emits": []}
        LOG = os.path.join(os.environ["STEPPE_PROJECT_ROOT"], "hits.log")

        async def handler(input, context):
            await context.state.set("hops", str(input["id"]), {"seen": True})
            with open(LOG, "a") as f:
                f.write(f"{input['id']}\\n")
    """,
}


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    data = tmp_path / "redis-data"
    data.mkdir()
    server = RedisProcess(data).start()
    yield server
    server.stop()


def test_redis_shutdown_nosave_mid_burst_loses_no_accepted_event(tmp_path: Path, own_redis: RedisProcess) -> None:
    root = write_project(tmp_path / "app", PROJECT)
    host = RunningHost(root, [], {"STEPPE_BACKEND": "redis", "STEPPE_REDIS_URL": own_redis.url,
                                  "STEPPE_REDIS_LEASE": "2", "STEPPE_RETRY_BASE": "0.2"}, mode="start")
    try:
        host.wait_ready(60)
        accepted: set[int] = set()
        refused: list[int] = []
        stop = threading.Event()

        def emit() -> None:
            with httpx.Client(timeout=5, headers=host.admin_headers) as client:
                i = 0
                while not stop.is_set() and i < 5000:
                    try:
                        ok = client.post(f"{host.url}/__steppe/emit", json={"topic": "hop", "data": {"id": i}}
                                         ).status_code == 202
                    except httpx.HTTPError:
                        ok = False
                    (accepted.add(i) if ok else refused.append(i))
                    i += 1
                    time.sleep(0.005)

        emitter = threading.Thread(target=emit, daemon=True)
        emitter.start()
        wait_until(lambda: len(handled(root)) >= 80, 30, "80 events handled")
        own_redis.shutdown_nosave()
        before_restart = set(accepted)
        own_redis.start()  # the same dir: the AOF brings back everything Redis had acknowledged
        wait_until(lambda: len(accepted - before_restart) >= 100, 30, "emits accepted again after the restart")
        stop.set()
        emitter.join(30)
        assert not emitter.is_alive()
        wait_until(lambda: accepted <= set(handled(root)), 60,
                   f"every accepted event handled after the Redis restart (refused while it was down: {len(refused)})")
        counts = Counter(handled(root))
        print(f"\nredis restart: accepted {len(accepted)}, refused {len(refused)}, "
              f"duplicates {sum(c - 1 for c in counts.values())}")
        health = httpx.get(f"{host.url}/__steppe/health", timeout=5)
        assert health.status_code == 200
    finally:
        host.stop()


def handled(root: Path) -> list[int]:
    path = root / "hits.log"
    return [int(x) for x in path.read_text().split("\n")[:-1]] if path.exists() else []


def test_a_host_whose_redis_does_not_answer_refuses_to_start(tmp_path: Path) -> None:
    root = write_project(tmp_path / "app", PROJECT)
    host = RunningHost(root, [], {"STEPPE_BACKEND": "redis", "STEPPE_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"},
                       mode="start")
    try:
        assert host.proc.wait(30) == 1
        assert "did not answer" in host.logs() and "redis_url" in host.logs()
    finally:
        host.stop()


@pytest.mark.parametrize(("password", "url_auth", "db", "said"), [
    ("sekret", "", 0, "refused the credentials in redis_url (AuthenticationError: Authentication required"),
    ("sekret", ":wrong@", 0, "refused the credentials in redis_url (AuthenticationError: invalid username-password"),
    ("sekret", ":sekret@", 99, "refused the connection (ResponseError: DB index is out of range); fix redis_url"),
    # seen: a password for a Redis that has none started the host, whose every route then answered 503
    (None, ":wrong@", 0, "refused the credentials in redis_url (AuthenticationError: AUTH <password> called without"),
])
def test_a_host_that_redis_refuses_says_why_and_never_shows_the_password(
        tmp_path: Path, password: str | None, url_auth: str, db: int, said: str) -> None:
    data = tmp_path / "redis-data"
    data.mkdir()
    server = RedisProcess(data, password=password).start()
    try:
        root = write_project(tmp_path / "app", PROJECT)
        url = f"redis://{url_auth}127.0.0.1:{server.port}/{db}"
        host = RunningHost(root, [], {"STEPPE_BACKEND": "redis", "STEPPE_REDIS_URL": url}, mode="start")
        try:
            assert host.proc.wait(30) == 1
            logs = host.logs()
            assert f"Redis at 127.0.0.1:{server.port}/{db} {said}" in logs, logs
            assert "did not answer" not in logs and "sekret" not in logs and "wrong" not in logs
        finally:
            host.stop()
    finally:
        server.stop()
