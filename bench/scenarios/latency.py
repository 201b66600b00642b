"""S9: single request latency. One connection, one request at a time (wrk -t1 -c1) on each language's API
step and on raw Starlette, and S5's bare echo (sequential p50, per interpreter) in the same run: a step's
p50 may cost raw Starlette's p50 plus 1.5 pipe round trips of a bare echo in its own language."""

from __future__ import annotations

from pathlib import Path

from ..loadgen import POST_LUA, WRK_CPU, WrkResult, wrk_pinned, wrk_rounds
from ..procs import Host, raw_starlette, write_files
from ..projects import api_project
from ..stats import Row, median
from . import Config
from .api import SUBJECTS, api_urls
from .protocol import pingpong

ECHO_OF = {"js": "node", "ts": "node", "python": "python", "ruby": "ruby"}  # the interpreter behind each step
BASELINE = "raw Starlette, uvicorn 1 worker, p50"
ECHO_WEIGHT = 1.5


def run(cfg: Config, work: Path) -> list[Row]:
    root = write_files(work / "api", api_project())
    lua = work / "post.lua"
    lua.write_text(POST_LUA)
    results: dict[str, list[WrkResult]] = {}
    echo: dict[str, list[float]] = {lang: [] for lang in sorted(set(ECHO_OF.values()))}
    with raw_starlette(work) as raw, Host(root) as host:
        raw.wait_http("/")
        host.ready()
        urls = api_urls({"raw": (raw.port, "/hello")}, host)
        for r in range(cfg.wrk_runs):  # a round: wrk on every server, then every bare echo (interleaved)
            got = wrk_rounds(urls, 1, cfg.wrk_seconds, 1, lua, cfg.wrk_warmup if r == 0 else 0)
            for key, res in got.items():
                results.setdefault(key, []).extend(res)
            for lang in echo:  # the servers are idle meanwhile
                echo[lang].append(pingpong(lang, "bare", cfg.ping_seq, 0, cfg.ping_warm)["p50_us"])
    base = results["raw"]
    raw_p50 = median([x.p50_ms * 1000 for x in base])
    pin = f"pinned with `taskset -c {WRK_CPU}`" if wrk_pinned() else "not pinned"
    note = (f"wrk -t1 -c1 --latency, {pin}, {cfg.wrk_seconds} s per run; bare echo: S5's, {cfg.ping_seq} sequential "
            f"pings per run, between the wrk runs; allowed p50 = raw Starlette p50 + {ECHO_WEIGHT}× echo p50")
    rows = []
    for lang, _, name in SUBJECTS:
        runs = results[lang]
        echo_p50 = median(echo[ECHO_OF[lang]])
        allowed = None if raw_p50 is None or echo_p50 is None else raw_p50 + ECHO_WEIGHT * echo_p50
        row = Row("S9", f"{name}, one request at a time, p50", "µs", [x.p50_ms * 1000 for x in runs], BASELINE,
                  [x.p50_ms * 1000 for x in base], higher_is_better=False,
                  extra={f"bare {ECHO_OF[lang]} echo p50 µs": echo_p50, "allowed p50 µs": allowed,
                         "p99 µs": median([x.p99_ms * 1000 for x in runs]),
                         "baseline p99 µs": median([x.p99_ms * 1000 for x in base]),
                         "req/s": median([x.rps for x in runs]), "errors": sum(x.bad for x in runs)},
                  note=note)
        row.check(f"p50 ≤ raw Starlette p50 + {ECHO_WEIGHT}× bare echo p50, no errors",
                  lambda m, ratio, x: x["allowed p50 µs"] is not None and m <= x["allowed p50 µs"]
                  and x["errors"] == 0)
        rows.append(row)
    return rows
