"""W1: what the Workbench costs. S1's JS API step under wrk on a host with the Workbench and telemetry
on and the Workbench page open on its live log tail, against the same host with both off (interleaved);
the hosts' RSS after the runs; the first load of the page on loopback; the bundle's gzipped size."""

from __future__ import annotations

import gzip
import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil

from ..loadgen import POST_LUA, WrkResult, wrk, wrk_description
from ..procs import REPO, Host, write_files
from ..projects import API_ROUTES, api_project
from ..stats import Row, median
from . import Config

UI = REPO / "host" / "static" / "workbench"
BASELINE = "same host with workbench = false, telemetry = false"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@contextmanager
def page_open(url: str, headers: dict[str, str]) -> Iterator[str]:
    """The Workbench's Logs view (its live tail) open in headless Chromium for the duration; without
    Chromium or Playwright, a reader of the same live feed. Yields how the page is held open."""
    chromium = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None  # type: ignore[assignment]
    if chromium and sync_playwright:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page()
            token = headers.get("authorization", "").removeprefix("Bearer ")
            if token:  # `start`: the browser logs in once and holds the admin cookie
                page.goto(f"{url}/__steppe/login?token={token}")
                page.goto("about:blank")  # so that the Logs view below is a fresh load, not a fragment change
            page.goto(f"{url}/__steppe/ui/#/logs")
            page.wait_for_selector("[data-testid='log-box']")
            try:
                yield "Chromium on the Logs view (live tail)"
            finally:
                browser.close()
        return
    stop = threading.Event()

    def tail() -> None:
        with httpx.stream("GET", f"{url}/__steppe/api/live", timeout=None, headers=headers) as live:
            for _ in live.iter_bytes():
                if stop.is_set():
                    return

    reader = threading.Thread(target=tail, daemon=True)
    reader.start()
    try:
        yield "a reader of /__steppe/api/live (no Chromium here)"
    finally:
        stop.set()


def first_load_ms(url: str, headers: dict[str, str]) -> float:
    """Fetching the page and every asset it names, as a browser's first visit does (no cache)."""
    with httpx.Client(base_url=url, timeout=10, headers=headers) as http:
        t0 = time.perf_counter()
        index = http.get("/__steppe/ui/")
        for asset in re.findall(r'(?:src|href)="(/__steppe/ui/assets/[^"]+)"', index.text):
            http.get(asset).raise_for_status()
        return (time.perf_counter() - t0) * 1000


def recorder_us(n: int, metrics: bool = False) -> float:
    """The recorder's own cost per invocation past its rate (S1's case: thousands of new traces a second,
    a sample recorded), timed in this process: a figure a busy machine blurs far less than req/s. With
    `metrics`, the Prometheus counts it feeds from its end hook (the default, `metrics = true`) included."""
    import os

    from steppe.event import NEW_TRACE
    from steppe.telemetry.metrics import Metrics
    from steppe.telemetry.recorder import InvocationRecorder

    class Step:
        name, language = "HelloJs", "node"

    class Ctx:  # an API request's: it starts its trace
        def __init__(self) -> None:
            self.trace_id, self.flows, self.step, self.sampled = os.urandom(16).hex(), [], Step, NEW_TRACE

    rows: list[Any] = []
    recorder = InvocationRecorder(rows.append, lambda kind, data: None, rate=200)
    recorder.metrics = Metrics() if metrics else None
    contexts = [Ctx() for _ in range(n)]
    t0 = time.perf_counter()
    for ctx in contexts:
        recorder.end(ctx, recorder.begin(ctx, Step, "api", {"body": {"name": "ada"}}), None)
    return (time.perf_counter() - t0) / n * 1e6


def bundle_kb() -> float:
    return sum(len(gzip.compress(p.read_bytes())) for p in (UI / "assets").iterdir()) / 1024


def run(cfg: Config, work: Path) -> list[Row]:
    off_root = write_files(work / "off", api_project())
    on_root = write_files(work / "on", api_project())
    lua = work / "post.lua"
    lua.write_text(POST_LUA)
    path = API_ROUTES["js"]
    results: dict[str, list[WrkResult]] = {"off": [], "on": []}
    rss: dict[str, list[float]] = {"off": [], "on": []}
    cpu: dict[str, list[float]] = {"off": [], "on": []}  # host CPU µs per request: robust to a busy machine
    with Host(off_root, workbench="false", telemetry="false") as off, Host(on_root) as on:
        off.ready()
        on.ready()
        loads = [first_load_ms(on.url, on.admin_headers) for _ in range(max(3, cfg.runs))]
        hosts: dict[str, Any] = {"off": off, "on": on}
        with page_open(on.url, on.admin_headers) as how:
            if cfg.wrk_warmup:
                for h in hosts.values():
                    wrk(f"{h.url}{path}", cfg.wrk_warmup, cfg.connections, lua)
            for run in range(cfg.wrk_runs):  # interleaved, and which goes first alternates: on this machine
                for key, h in list(hosts.items())[::1 if run % 2 else -1]:  # the second one ran slower
                    before = sum(psutil.Process(h.pid).cpu_times()[:2])
                    result = wrk(f"{h.url}{path}", cfg.wrk_seconds, cfg.connections, lua)
                    used = sum(psutil.Process(h.pid).cpu_times()[:2]) - before
                    results[key].append(result)
                    cpu[key].append(used / max(1.0, result.rps * cfg.wrk_seconds) * 1e6)
                    rss[key].append(h.rss_mb()["host"])
        overview = httpx.get(f"{on.url}/__steppe/api/overview", timeout=10, headers=on.admin_headers).json()
        skipped = overview["tracesSkipped"]
    on_runs, off_runs = results["on"], results["off"]
    throughput = Row("W1", "S1 JS API step, Workbench on, page open on the live tail", "req/s",
                     [r.rps for r in on_runs], BASELINE, [r.rps for r in off_runs],
                     extra={"p99 ms": median([r.p99_ms for r in on_runs]),
                            "baseline p99 ms": median([r.p99_ms for r in off_runs]),
                            "errors": sum(r.bad for r in on_runs), "traces sampled out": skipped},
                     note=f"{wrk_description(cfg.connections)}; {cfg.wrk_seconds} s per run; page: {how}")
    throughput.check("≥ 95 % of the Workbench-off host's req/s, no errors",
                     lambda m, ratio, x: ratio >= 0.95 and x["errors"] == 0)
    cost = Row("W1", "host CPU per S1 request, Workbench on (recording, telemetry writes, live feed)", "µs",
               [round(x, 1) for x in cpu["on"]], BASELINE, [round(x, 1) for x in cpu["off"]], higher_is_better=False,
               note="the host process' user + system CPU time (all its threads) over the requests wrk completed; "
                    "it falls as req/s rises (fixed costs per loop turn), so compare runs of similar req/s")
    own = Row("W1", "recorder per invocation past telemetry_rate (sampling), in process", "µs",
              [round(recorder_us(20_000 if cfg.quick else 200_000), 2) for _ in range(max(1, cfg.runs))],
              higher_is_better=False, note="begin + end of invocations of new traces, encoding the sampled ones")
    with_metrics: list[float] = []
    without: list[float] = []
    for _ in range(max(1, cfg.runs)):  # interleaved
        without.append(round(recorder_us(20_000 if cfg.quick else 200_000), 2))
        with_metrics.append(round(recorder_us(20_000 if cfg.quick else 200_000, metrics=True), 2))
    metered = Row("W1", "recorder per invocation with the Prometheus counts (metrics = true, the default)", "µs",
                  with_metrics, "the same recorder with metrics = false", without, higher_is_better=False,
                  note="begin + end as above, plus the counters and the duration histogram of /__steppe/metrics")
    memory = Row("W1", "host RSS after each S1 run, Workbench on", "MB", rss["on"], BASELINE, rss["off"],
                 higher_is_better=False,
                 extra={"delta MB": round((median(rss["on"]) or 0) - (median(rss["off"]) or 0), 1)})
    memory.check("≤ 20 MB over the Workbench-off host", lambda m, ratio, x: x["delta MB"] <= 20)
    first = Row("W1", "first load of /__steppe/ui/ (page and assets, no cache), loopback", "ms", loads,
                higher_is_better=False)
    first.check("≤ 1 s", lambda m, ratio, x: m <= 1000)
    size = bundle_kb()
    bundle = Row("W1", "Workbench JS + CSS, gzipped", "KB", [round(size, 1)], higher_is_better=False)
    bundle.check("≤ 400 KB", lambda m, ratio, x: m <= 400)
    return [throughput, cost, own, metered, memory, first, bundle]
