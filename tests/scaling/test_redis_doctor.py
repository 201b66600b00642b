"""`steppe doctor` on a project whose parts are on Redis checks that Redis, on redis-servers of this module's
own: reached or not (exit 1, saying why), and set up as docs/scaling.md asks (warnings for an evicting
policy and no AOF; exit 1 for a Redis out of memory)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from redis_support import RedisProcess

from conftest import free_port, write_project

PROJECT = {"steps/noop_step.py": """
    config = {"type": "event", "name": "Noop", "subscribes": ["t"], "emits": []}

    async def handler(input, context):
        pass
"""}


def doctor(root: Path, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "steppe.cli", "doctor", "--root", str(root)], capture_output=True,
                          text=True, timeout=60,
                          env={**os.environ, "STEPPE_BACKEND": "redis", "STEPPE_REDIS_URL": url})


def server(tmp_path: Path, *options: str, password: str | None = None) -> RedisProcess:
    data = tmp_path / f"redis-{free_port()}"
    data.mkdir()
    return RedisProcess(data, password).start(*options)


def test_a_redis_set_up_as_the_docs_ask_is_ok(tmp_path: Path) -> None:
    root = write_project(tmp_path / "app", PROJECT)
    redis = server(tmp_path)  # AOF, fsync every second, noeviction
    try:
        checked = doctor(root, redis.url)
    finally:
        redis.stop()
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"Redis at 127.0.0.1:{redis.port}/0: ok (Redis " in checked.stdout
    assert "appendonly yes, maxmemory-policy noeviction" in checked.stdout and "warning" not in checked.stdout


def test_an_evicting_redis_without_persistence_is_warned_about(tmp_path: Path) -> None:
    root = write_project(tmp_path / "app", PROJECT)
    redis = server(tmp_path, "--appendonly", "no", "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru")
    try:
        checked = doctor(root, redis.url)
    finally:
        redis.stop()
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "warning: maxmemory-policy is allkeys-lru" in checked.stdout
    assert "warning: appendonly is no" in checked.stdout


def test_a_redis_out_of_memory_fails_the_check(tmp_path: Path) -> None:
    root = write_project(tmp_path / "app", PROJECT)
    redis = server(tmp_path)
    try:
        assert redis.cli("SET", "filler", "x" * 3_000_000) == "True"
        assert redis.cli("CONFIG", "SET", "maxmemory", "2mb") == "OK"  # now below what Redis holds
        checked = doctor(root, redis.url)
    finally:
        redis.stop()
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "error: Redis is out of memory" in checked.stdout


def test_a_redis_that_refuses_or_does_not_answer_fails_the_check_saying_why(tmp_path: Path) -> None:
    root = write_project(tmp_path / "app", PROJECT)
    redis = server(tmp_path, password="sekret")
    try:
        refused = doctor(root, f"redis://:wrong@127.0.0.1:{redis.port}/0")
    finally:
        redis.stop()
    assert refused.returncode == 1 and "refused the credentials in redis_url" in refused.stdout, refused.stdout
    assert "wrong" not in refused.stdout
    silent = doctor(root, f"redis://127.0.0.1:{free_port()}/0")
    assert silent.returncode == 1 and "did not answer" in silent.stdout, silent.stdout
    assert "no SQLite databases in" in silent.stdout
