"""Test tools for the Redis backends: the machine's Redis (127.0.0.1:6379, or STEPPE_TEST_REDIS_URL),
skipped locally when it does not answer and a failure under CI, and a connection with a key prefix of
its own that is deleted afterwards, so tests never see each other's keys."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlparse

import pytest

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
