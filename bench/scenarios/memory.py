"""S8: memory. RSS (psutil) of the host and each runner idle, after an S4 one-hop burst, and a leak check
across repeated bursts on one host; baseline: raw Starlette on uvicorn and the bare echo interpreters.
Beside RSS, each runner's live heap after a full collection (Node heapUsed, Python and Ruby live objects)
tells a leak from a heap the runtime keeps after growing it."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx

from steppe.runners import RunnerRegistry

from ..pingpong import ECHO, ECHO_FILES
from ..procs import Host, raw_starlette, rss_mb
from ..projects import HEAP_PROJECT, HEAP_ROUTES
from ..stats import Row, median
from . import Config
from .events import event_host, one_hop

RUNNERS = {"python": "Python", "node": "Node", "ruby": "Ruby"}
SETTLE = 1.0  # seconds a process is left alone before its idle RSS is read
LEAK_TOLERANCE = 0.05


def bare_idle(work: Path) -> dict[str, float]:
    """RSS of raw Starlette on uvicorn, and of each bare echo interpreter, idle."""
    registry = RunnerRegistry(project_root=work)
    echoes = [subprocess.Popen([registry.get(lang).command[0], str(ECHO / ECHO_FILES[lang])],
                               stdin=subprocess.PIPE, stdout=subprocess.DEVNULL) for lang in RUNNERS]
    try:
        with raw_starlette(work) as raw:
            raw.wait_http("/")
            time.sleep(SETTLE)
            out = {"host": rss_mb(raw.pid)}
            out.update({lang: rss_mb(p.pid) for lang, p in zip(RUNNERS, echoes, strict=True)})
    finally:
        for p in echoes:
            assert p.stdin
            p.stdin.close()
            p.wait(10)
    return out


def live_heaps(host: Host) -> dict[str, float]:
    return {lang: float(httpx.get(host.url + route, timeout=30).json()["live"]) for lang, route in HEAP_ROUTES.items()}


def total(rss: dict[str, float]) -> float:
    return rss["host"] + sum(rss[lang] for lang in RUNNERS)


def run(cfg: Config, work: Path) -> list[Row]:
    idle: list[dict[str, float]] = []
    bare: list[dict[str, float]] = []
    rss: list[list[dict[str, float]]] = []  # per host: RSS after each burst
    heaps: list[list[dict[str, float]]] = []  # per host: live heaps after each burst
    for r in range(min(cfg.runs, 3)):
        bare.append(bare_idle(work))
        with event_host(work, "sqlite", HEAP_PROJECT) as host:
            host.ready()
            time.sleep(SETTLE)
            idle.append(host.rss_mb())
            rss.append([])
            heaps.append([])
            for b in range(cfg.leak_bursts):
                burst = one_hop(host, cfg.events_n, f"leak-{r}-{b}")
                if burst.lost:
                    raise RuntimeError(f"S8: {burst.lost} of {burst.n} events lost in burst {b + 1}")
                rss[-1].append(host.rss_mb())
                heaps[-1].append(live_heaps(host))
    rows = [Row("S8", "host idle", "MB RSS", [x["host"] for x in idle], "raw Starlette on uvicorn, idle",
                [x["host"] for x in bare], higher_is_better=False)]
    for lang, name in RUNNERS.items():
        rows.append(Row("S8", f"{name} runner idle", "MB RSS", [x[lang] for x in idle],
                        f"bare {lang} echo process, idle", [x[lang] for x in bare], higher_is_better=False))
    rows.append(Row("S8", "host + three runners idle", "MB RSS", [total(x) for x in idle],
                    "raw Starlette + three bare echo processes", [total(x) for x in bare], higher_is_better=False,
                    extra={"whole process tree MB": median([x["total"] for x in idle])},
                    note="project: the S4 event project (JS, Python, Ruby steps), durable queue")
                .check("≤ 1.25× baseline", lambda m, ratio, x: ratio <= 1.25))  # issue 13 (was < 160 MB)
    first, last = [a[0] for a in rss], [a[-1] for a in rss]
    rows.append(Row("S8", f"host + three runners after one S4 burst ({cfg.events_n} events)", "MB RSS",
                    [total(x) for x in first], "same hosts idle", [total(x) for x in idle], higher_is_better=False,
                    extra={f"{name} MB": median([x[key] for x in first])
                           for key, name in [("host", "host"), *RUNNERS.items()]}))
    leak = Row("S8", f"leak check (RSS): after burst {cfg.leak_bursts} vs after burst 1, host + runners", "MB RSS",
               [total(x) for x in last], "same hosts after burst 1", [total(x) for x in first],
               higher_is_better=False,
               extra={f"{name} growth MB": median([b[key] - a[key] for a, b in zip(first, last, strict=True)])
                      for key, name in [("host", "host"), *RUNNERS.items()]},
               note=f"{cfg.leak_bursts} one-hop bursts of {cfg.events_n} events on each of {len(rss)} host(s); "
                    "RSS includes heap a runtime keeps after growing it (V8 does): see the live-heap rows")
    rows.append(leak.check(f"growth ≤ {LEAK_TOLERANCE:.0%}", lambda m, ratio, x: ratio <= 1 + LEAK_TOLERANCE))
    units = {"python": "gc-tracked objects", "node": "MB heapUsed", "ruby": "live objects"}
    for lang, name in RUNNERS.items():
        rows.append(Row("S8", f"leak check: {name} runner live heap after full GC, burst {cfg.leak_bursts} vs 1",
                        units[lang], [h[-1][lang] for h in heaps], "same runner after burst 1",
                        [h[0][lang] for h in heaps], higher_is_better=False,
                        note="diagnostic, no target: a step in the project forces a collection and reports "
                             "the live heap"))
    return rows
