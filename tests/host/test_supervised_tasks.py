"""The supervisor of the host's long-running tasks (host/tasks.py), on a real cron schedule: a schedule whose
loop raises is logged with its traceback, restarted with backoff and reported in health until it has
been quiet for `keep_for`; a task that returns is not restarted."""

from __future__ import annotations

import asyncio
import io
import logging
from pathlib import Path

import pytest

from steppe.cron import CronScheduler
from steppe.health import Health
from steppe.logs import LogBook
from steppe.steps import Step
from steppe.tasks import TaskSupervisor


async def test_a_crashing_cron_schedule_is_restarted_reported_and_recovers(caplog: pytest.LogCaptureFixture) -> None:
    health = Health()
    tasks = TaskSupervisor(health, backoff=0.05, backoff_cap=0.2, keep_for=0.5)
    ran: list[float] = []

    async def run(step: Step) -> None:
        ran.append(asyncio.get_running_loop().time())

    cron = CronScheduler(run, LogBook(out=io.StringIO()), spawn=tasks.supervise)
    step = Step(Path("steps/tick_step.py"), "python", {"type": "cron", "name": "Tick", "cron": "not a schedule"})
    with caplog.at_level(logging.ERROR, logger="steppe.tasks"):
        cron.sync([step])
        await asyncio.sleep(0.4)
    assert tasks.restarts["cron schedule of Tick"] >= 2
    (reason,) = health.as_dict()["reasons"]
    assert reason["component"] == "task:cron schedule of Tick" and reason["status"] == "degraded"
    assert reason["reason"].startswith("cron schedule of Tick restarted after CroniterBadCronError: ")
    assert "Traceback (most recent call last)" in caplog.text
    cron.sync([Step(step.path, "python", {**step.config, "cron": "* * * * * *"})])  # every second
    deadline = asyncio.get_running_loop().time() + 5
    while not ran or health.status != "ok":
        assert asyncio.get_running_loop().time() < deadline, (ran, health.as_dict())
        await asyncio.sleep(0.05)
    await cron.stop()
    tasks.close()


async def test_a_task_that_returns_is_not_restarted() -> None:
    health = Health()
    tasks = TaskSupervisor(health)
    calls = 0

    async def once() -> None:
        nonlocal calls
        calls += 1

    await tasks.supervise("once", once)
    assert calls == 1 and health.status == "ok" and tasks.restarts == {}


async def test_a_task_whose_body_turns_the_cancellation_into_an_error_still_ends() -> None:
    """A library may catch the CancelledError and raise its own error instead: not a failure to restart."""
    health = Health()
    tasks = TaskSupervisor(health, backoff=0.01)
    started = 0
    released = asyncio.Event()  # lets a body that was not stopped return, so that the test ends either way

    async def body() -> None:
        nonlocal started
        started += 1
        try:
            await released.wait()
        except asyncio.CancelledError:
            raise ConnectionError("connection closed") from None

    task = tasks.supervise("misbehaving", body)
    await asyncio.sleep(0.05)
    task.cancel()
    try:
        done, _ = await asyncio.wait([task], timeout=2)
    finally:
        released.set()
    assert done and task.cancelled()
    assert started == 1 and tasks.restarts == {} and health.status == "ok"


async def test_the_storage_watch_on_redis_ends_whenever_it_is_cancelled() -> None:
    """Seen: redis-py 8.1 loses a cancellation that lands as a reply arrives (the reply is returned, or
    raised as an error). The storage watch then went on, and a host stopping after that never exited (in
    CI: a host that failed before it listened hung with its port closed). Cancelled at many points of its
    rounds against a real Redis, it ends every time."""
    from redis_support import redis_conn

    from steppe.queue.redis import RedisQueue
    from steppe.storage_watch import StorageWatch

    class Stop(BaseException):
        """Ends a watch that went on running despite its cancellation, so that the test ends either way."""

    stopping = False

    def steps() -> list[str]:
        if stopping:
            raise Stop
        return [f"step{i}" for i in range(20)]  # rounds of 40 commands: cancels land inside them

    async with redis_conn() as conn:
        queue = RedisQueue(conn, upkeep=False)
        hung = 0
        for i in range(60):
            watch = StorageWatch(Health(), queue, [], steps, interval=0.0)
            task = asyncio.get_running_loop().create_task(watch.run())
            await asyncio.sleep(0.0003 * (i % 11))
            task.cancel()
            done, _ = await asyncio.wait([task], timeout=2)
            if not done:
                hung += 1
                stopping = True
                await asyncio.wait([task], timeout=2)
                stopping = False
        await queue.close()
    assert hung == 0, f"{hung} of 60 cancelled storage watches went on running"
