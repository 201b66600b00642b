"""The Python runner returns a freed big block to the OS every time, not only the first (glibc would keep it
as the heap's free top once its thresholds had risen), and a handler's child processes see the user's own
GLIBC_TUNABLES, not the host's settings for the runner."""

from __future__ import annotations

import os
import platform

import httpx
import psutil
import pytest

from conftest import write_project

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc malloc settings")

MB = 1 << 20
PROJECT = {
    "steps/block_step.py": """
        import os

        config = {"type": "api", "name": "Block", "path": "/block/:mb", "method": "GET", "emits": []}

        async def handler(req, ctx):
            block = bytearray(b"x") * (int(req["pathParams"]["mb"]) << 20)  # written: resident
            del block
            return {"status": 200, "body": {"tunables": os.environ.get("GLIBC_TUNABLES")}}
    """,
}


def _block(url: str, mb: int) -> dict:
    answer = httpx.get(f"{url}/block/{mb}", timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def test_a_freed_big_block_leaves_the_runner_each_time(tmp_path, start_host):
    host = start_host(write_project(tmp_path, PROJECT))
    _block(host.url, 1)
    runner = psutil.Process(host.runner_pid("python"))
    before = runner.memory_info().rss
    _block(host.url, 24)  # glibc maps this one and, freed, raises its thresholds past 24 MB
    answer = _block(host.url, 16)  # from the heap now: without fixed thresholds its 16 MB stayed in RSS
    assert runner.memory_info().rss - before < 6 * MB
    assert answer["tunables"] == os.environ.get("GLIBC_TUNABLES")


def test_handlers_see_the_users_own_glibc_tunables(tmp_path, start_host):
    host = start_host(write_project(tmp_path, PROJECT), env={"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})
    assert _block(host.url, 1)["tunables"] == "glibc.malloc.arena_max=2"
