"""Deliveries queued for a step the project no longer has are told of, not silently left in the queue.

Seen: deliveries of an event step (here delayed, as a retry's backoff or `delaySeconds` leaves them) were
kept in `.steppe/queue.db` after the step was renamed; the host started without a word, `steppe events`
counted them as "ready" and nothing would ever take them."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator

import httpx
import pytest
import redis
from redis_support import need_redis

from conftest import RunningHost, wait_until, write_project

STEP = '''
config = {{"type": "event", "name": "{name}", "subscribes": ["later"], "emits": [],
          "infrastructure": {{"queue": {{"delaySeconds": 3600}}}}}}
async def handler(data, context):
    pass
'''


def emit_three(host: RunningHost) -> None:
    for n in range(3):
        r = httpx.post(f"{host.url}/__steppe/emit", json={"topic": "later", "data": {"n": n}})
        assert r.status_code == 202 and r.json()["deliveries"] == 1, r.text


def gone(host: RunningHost) -> dict:
    return httpx.get(f"{host.url}/__steppe/events").json()["stepsGone"]


@pytest.fixture
def redis_env() -> Iterator[dict[str, str]]:
    """A Redis bus under a key prefix of its own, deleted afterwards."""
    url, prefix = need_redis(), f"test-gone-{uuid.uuid4().hex[:8]}:"
    yield {"STEPPE_REDIS_URL": url, "STEPPE_REDIS_PREFIX": prefix}
    client = redis.Redis.from_url(url)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()


@pytest.mark.parametrize("bus", ["sqlite", "redis"])
def test_deliveries_of_a_renamed_step_are_told_of_at_start_and_after_a_reload(tmp_path, start_host, request, bus):
    env = {"STEPPE_BUS": bus}
    if bus == "redis":
        env |= request.getfixturevalue("redis_env")
    root = write_project(tmp_path, {"steps/later_step.py": STEP.format(name="Later")})
    first = start_host(root, env=env)
    emit_three(first)
    assert gone(first) == {}
    first.stop()

    (root / "steps/later_step.py").write_text(STEP.format(name="LaterRenamed"))
    host = start_host(root, env=env)
    logs = host.wait_log("deliveries wait for steps this project does not have now")
    assert "3 for 'Later'" in logs
    assert gone(host) == {"Later": 3}
    out = subprocess.run([sys.executable, "-m", "steppe.cli", "events", "--root", str(root), "--port", str(host.port)],
                         capture_output=True, text=True, timeout=60)
    assert "waiting for step 'Later', which the project does not have now: 3 delivery(ies)" in out.stdout, out

    (root / "steps/later_step.py").write_text(STEP.format(name="Later"))  # renamed back: `dev` reloads it
    wait_until(lambda: gone(host) == {}, 15, "the step back, nothing gone")
