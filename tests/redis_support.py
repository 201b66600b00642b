"""Test tools for the Redis backends: the machine's Redis (127.0.0.1:6379, or STEPPE_TEST_REDIS_URL),
skipped locally when it does not answer and a failure under CI, and a connection with a key prefix of
its own that is deleted afterwards, so tests never see each other's keys."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlparse

import pytest

from conftest import free_port, wait_until
from steppe.redis_conn import RedisConn

REDIS_URL = os.environ.get("STEPPE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI") == "true"


def redis_answers(url: str = REDIS_URL) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def need_redis(url: str = REDIS_URL) -> str:
    """The Redis URL to test against: skipped locally when Redis is not running, a failure under CI."""
    if not redis_answers(url):
        if IN_CI:
            pytest.fail(f"Redis is required under CI but {url} does not answer")
        pytest.skip(f"no Redis answering at {url}")
    return url


def fresh_prefix() -> str:
    return f"steppe-test:{uuid.uuid4().hex[:12]}:"


async def delete_prefix(conn: RedisConn) -> None:
    keys = [k async for k in conn.client.scan_iter(match=conn.prefix + "*", count=1000)]
    for i in range(0, len(keys), 500):
        await conn.client.delete(*keys[i:i + 500])


@asynccontextmanager
async def redis_conn(url: str = REDIS_URL) -> AsyncIterator[RedisConn]:
    """A connection under a fresh key prefix; every key under it is deleted afterwards."""
    conn = RedisConn(need_redis(url), fresh_prefix())
    try:
        yield conn
    finally:
        await delete_prefix(conn)
        await conn.close()


def redis_server() -> str:
    path = shutil.which("redis-server")
    if path is None:
        if IN_CI:
            pytest.fail("redis-server is required under CI but not on PATH")
        pytest.skip("redis-server not installed")
    return path


class RedisProcess:
    """A redis-server of this test's own: AOF on, fsync every second, no RDB snapshots."""

    def __init__(self, data: Path, password: str | None = None) -> None:
        self.data, self.port, self.password = data, free_port(), password
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *options: str) -> RedisProcess:
        self.proc = subprocess.Popen(
            [redis_server(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data),
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
             *(["--requirepass", self.password] if self.password else []), *options],
            stdout=(self.data / "redis.log").open("ab"), stderr=subprocess.STDOUT)
        wait_until(lambda: self.cli("PING") == "True", 10, "the test's redis-server answering")
        return self

    def cli(self, *args: str) -> str:
        import redis

        try:
            r = redis.Redis(port=self.port, password=self.password, socket_timeout=1, decode_responses=True)
            try:
                return str(r.execute_command(*args))
            finally:
                r.close()
        except redis.RedisError as e:
            return f"error: {e}"

    def shutdown_nosave(self) -> None:
        assert self.proc is not None
        self.cli("SHUTDOWN", "NOSAVE")
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

