"""Shared by the fault tests of the runners: a request made while another one of the same runner is in
flight, which must still get its 200 from the same runner process; an event whose handler fails each of its
two attempts, dead-lettered at once by the same runner process; and a trace's log records."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from conftest import RunningHost, wait_until


def post(host: RunningHost, path: str, timeout: float, **kwargs: Any) -> tuple[httpx.Response, float]:
    """POST `path`; the answer and how long it took."""
    started = time.monotonic()
    r = httpx.post(f"{host.url}{path}", timeout=timeout, **kwargs)
    return r, time.monotonic() - started


def while_another_waits(host: RunningHost, language: str, slow_path: str, path: str, timeout: float,
                        **kwargs: Any) -> tuple[httpx.Response, float]:
    """POST `path` while `slow_path` (answering {"slow": true} after a while) is in flight in the same runner:
    that one must get its 200, from the same runner process, and the runner sent no line the host dropped."""
    pid, logged = host.runner_pid(language), len(host.logs())
    slow: list[httpx.Response] = []
    other = threading.Thread(target=lambda: slow.append(post(host, slow_path, timeout)[0]))
    other.start()
    time.sleep(0.15)  # the slow request is in the runner first
    try:
        return post(host, path, timeout, **kwargs)
    finally:
        other.join()
        assert slow and slow[0].status_code == 200 and slow[0].json() == {"slow": True}, slow
        assert host.runner_pid(language) == pid, f"the {language} runner was restarted"
        assert f"ignored a line from the {language} runner (not JSON)" not in host.logs()[logged:]


def trace_logs(host: RunningHost, trace: str) -> list[dict]:
    return [rec for rec in host.admin_get("/__steppe/logs", params={"limit": 1000}, timeout=10).json()
            if rec.get("traceId") == trace]


def dead_lettered(host: RunningHost, language: str, topic: str, step: str, timeout: float) -> dict:
    """Emit `topic` (its subscriber `step` fails each of its 2 attempts): its dead letter, there within
    `timeout` seconds (a hang would wait out the handler's timeout twice), from the same runner process."""
    pid, started = host.runner_pid(language), time.monotonic()
    r = httpx.post(f"{host.url}/__steppe/emit", json={"topic": topic, "data": {"n": 1}}, timeout=10)
    assert r.status_code == 202, r.text
    [letter] = wait_until(lambda: httpx.get(f"{host.url}/__steppe/dlq", params={"step": step}, timeout=10).json(),
                          timeout * 1.5, f"a dead letter of {step}")
    assert letter["attempts"] == 2, letter
    assert time.monotonic() - started < timeout, f"dead-lettered after {time.monotonic() - started:.1f}s"
    assert host.runner_pid(language) == pid, f"the {language} runner was restarted"
    return dict(letter)
