"""Load generators: wrk for HTTP throughput, a poller for "first 200" and "new code answers", event bursts."""

from __future__ import annotations

import http.client
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

WRK = "/usr/bin/wrk" if Path("/usr/bin/wrk").exists() else (shutil.which("wrk") or "wrk")
WRK_CPU = "1"  # the load generator's core; servers are not pinned
POST_LUA = 'wrk.method = "POST"\nwrk.body = \'{"name":"ada"}\'\nwrk.headers["Content-Type"] = "application/json"\n'


def wrk_pinned() -> bool:
    return shutil.which("taskset") is not None and (os.cpu_count() or 1) > 1


def wrk_description(connections: int) -> str:
    pin = f"pinned with `taskset -c {WRK_CPU}`" if wrk_pinned() else "not pinned (no taskset or one core)"
    return f"wrk ({WRK}) -t1 -c{connections}, {pin}; servers not pinned"


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    bad: int  # non-2xx answers plus socket errors


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(url: str, seconds: int, connections: int, lua: Path, timeout: int | None = None) -> WrkResult:
    """One wrk run; `timeout` (s) replaces wrk's 2 s per request, after which it counts a socket timeout."""
    cmd = [WRK, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(lua), url]
    if timeout:
        cmd[1:1] = [f"--timeout={timeout}s"]
    if wrk_pinned():
        cmd = ["taskset", "-c", WRK_CPU, *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=seconds + (timeout or 2) + 30).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    lat = {q: re.search(rf"^\s+{q}%\s+([\d.]+)(us|ms|s|m)\b", out, re.M) for q in ("50", "99")}
    if rps is None or lat["50"] is None or lat["99"] is None:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    bad = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", out))
    if errors := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        bad += sum(int(n) for n in errors.groups())
    return WrkResult(float(rps.group(1)), _ms(*lat["50"].groups()), _ms(*lat["99"].groups()), bad)


def check_answers(targets: dict[str, tuple[int, str]], timeout: float = 5) -> None:
    """Every (port, path) answers the small JSON before it is measured (a 404 under wrk is fast and wrong)."""
    for key, (port, path) in targets.items():
        got = answer(port, path, timeout=timeout)
        if got is None or got[0] != 200 or b'"ada"' not in got[1]:
            raise RuntimeError(f"{key} at port {port} {path} answered {got!r}")


def wrk_rounds(urls: dict[str, str], runs: int, seconds: int, connections: int, lua: Path,
               warmup: int = 0, timeout: int | None = None) -> dict[str, list[WrkResult]]:
    """`runs` rounds of wrk over every URL in turn (interleaved: machine drift hits subjects and baselines
    alike), after `warmup` seconds of wrk on each."""
    if warmup:
        for url in urls.values():
            wrk(url, warmup, connections, lua, timeout)
    results: dict[str, list[WrkResult]] = {key: [] for key in urls}
    for _ in range(runs):
        for key, url in urls.items():
            results[key].append(wrk(url, seconds, connections, lua, timeout))
    return results


def poll(check: Callable[[], bool], timeout: float, interval: float = 0.005) -> float | None:
    """Seconds until check() is true (checked every `interval`), or None after `timeout`."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if check():
            return time.perf_counter() - started
        time.sleep(interval)
    return None


def answer(port: int, path: str, body: bytes = b'{"name":"ada"}', timeout: float = 5) -> tuple[int, bytes] | None:
    """POST body to 127.0.0.1:port/path on a fresh connection; None when nothing listens yet (or no answer
    within `timeout` seconds)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body, {"content-type": "application/json"})
        r = conn.getresponse()
        return r.status, r.read()
    except (ConnectionError, OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


@dataclass
class Burst:
    n: int
    seconds: float  # from the emitting request to the last event handled (or to the timeout)
    distinct: int  # distinct events handled
    handled: int  # handler calls (more than distinct: redeliveries)

    @property
    def rate(self) -> float:
        return self.distinct / self.seconds

    @property
    def lost(self) -> int:
        return self.n - self.distinct


def event_burst(url: str, topic: str, n: int, run: str, count_path: str, timeout: float) -> Burst:
    """Ask the project's Burst step to emit n events on `topic`, then poll `count_path/run` until all n
    were handled (or timeout): handled events per second end to end, and how many never arrived."""
    with httpx.Client(base_url=url, timeout=timeout) as client:
        started = time.perf_counter()
        client.post("/burst", json={"n": n, "run": run, "topic": topic}).raise_for_status()
        seen = {"distinct": 0, "handled": 0}
        while time.perf_counter() - started < timeout:
            seen = client.get(f"{count_path}/{run}").json()
            if seen["distinct"] >= n:
                break
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        client.get(f"{count_path}/{run}", params={"forget": "1"})
    return Burst(n, elapsed, int(seen["distinct"]), int(seen["handled"]))
