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
