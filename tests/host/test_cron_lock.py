"""Cron across hosts: three schedulers, each with its own Redis connection, schedule one every-second cron
step; each tick runs on exactly one of them. Without Redis answering, no tick runs at all."""

from __future__ import annotations

import asyncio
import io
import math
import time
from collections import Counter
from pathlib import Path

from redis_support import redis_conn

from steppe.cron import CronScheduler
from steppe.cron_lock import RedisCronLock
from steppe.logs import LogBook
from steppe.redis_conn import RedisConn
from steppe.steps import Step


async def test_each_tick_runs_on_one_host(tmp_path: Path) -> None:
    step = Step(tmp_path / "tick.step.ts", "node", {"type": "cron", "name": "Tick", "cron": "* * * * * *"})
    runs: list[tuple[int, float]] = []
    async with redis_conn() as first:
        conns = [first, RedisConn(first.url, first.prefix), RedisConn(first.url, first.prefix)]
        schedulers = []
        for host, conn in enumerate(conns):
            async def run(s: Step, host: int = host) -> None:
                runs.append((host, time.time()))

            schedulers.append(CronScheduler(run, LogBook(out=io.StringIO()), lock=RedisCronLock(conn)))
        try:
            for s in schedulers:
                s.schedule(step)
            await asyncio.sleep(4.5)
        finally:
            for s in schedulers:
                await s.stop()
            for conn in conns[1:]:
                await conn.close()
    ticks = [math.floor(t) for _, t in runs]  # a tick runs just after its whole second
    assert 4 <= len(runs) <= 5, runs  # one run per second, not three
    assert all(n == 1 for n in Counter(ticks).values()), runs


async def test_no_tick_runs_when_redis_does_not_answer(tmp_path: Path) -> None:
    step = Step(tmp_path / "tick.step.ts", "node", {"type": "cron", "name": "Tick", "cron": "* * * * * *"})
    runs: list[str] = []

    async def run(s: Step) -> None:
        runs.append(s.name)

    conn = RedisConn("redis://127.0.0.1:1/0")  # nothing listens there
    scheduler = CronScheduler(run, LogBook(out=io.StringIO()), lock=RedisCronLock(conn))
    scheduler.schedule(step)
    await asyncio.sleep(2.2)
    await scheduler.stop()
    await conn.close()
    assert runs == []
