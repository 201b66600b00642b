"""S10: the peers in the same run. The same small JSON handler in FastAPI (what a Python user would
otherwise pick; uvicorn, one worker, served as raw Starlette is) measured under wrk interleaved with raw
Starlette and Steppe's four API steps; with `--peers`, also Motia 0.17 running the same JS step file
(bench/peers/motia, installed by bench/peers/setup-motia; skipped with the reason when it cannot run)."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from ..loadgen import POST_LUA, WrkResult, check_answers, wrk_description, wrk_rounds
from ..motia import MOTIA_VERSION, installed_version, motia_server, why_not_motia
from ..procs import Host, fastapi_peer, raw_starlette, write_files
from ..projects import api_project
from ..stats import Row, median
from . import Config
from .api import SUBJECTS, api_urls

FASTAPI = "FastAPI, uvicorn 1 worker (pydantic body model)"
TARGET = "≥ 1.0× FastAPI req/s and p99 ≤ FastAPI's p99, no errors"
MOTIA_SECONDS = 5  # per wrk run on Motia: at one request at a time it answers a few per second
MOTIA_TIMEOUT = 20


def figures(runs: list[WrkResult], base: list[WrkResult]) -> dict[str, float | None]:
    return {"p50 ms": median([r.p50_ms for r in runs]), "p99 ms": median([r.p99_ms for r in runs]),
            "baseline p50 ms": median([r.p50_ms for r in base]),
            "baseline p99 ms": median([r.p99_ms for r in base]),
            "errors": sum(r.bad for r in runs), "baseline errors": sum(r.bad for r in base)}


def run(cfg: Config, work: Path) -> list[Row]:
    root = write_files(work / "api", api_project())
    lua = work / "post.lua"
    lua.write_text(POST_LUA)
    motia_skip = why_not_motia() if cfg.peers else None
    slow: dict[str, list[WrkResult]] = {}
    with ExitStack() as servers:
        raw = servers.enter_context(raw_starlette(work))
        fast = servers.enter_context(fastapi_peer(work))
        host = servers.enter_context(Host(root))
        motia = servers.enter_context(motia_server(work)) if cfg.peers and motia_skip is None else None
        raw.wait_http("/")
        fast.wait_http("/")
        host.ready()
        urls = api_urls({"raw": (raw.port, "/hello"), "fastapi": (fast.port, "/hello")}, host)
        results = wrk_rounds(urls, cfg.wrk_runs, cfg.wrk_seconds, cfg.connections, lua, cfg.wrk_warmup)
        if motia is not None:
            motia.wait_http("/js")
            check_answers({"motia": (motia.port, "/js")}, timeout=MOTIA_TIMEOUT)  # a process per call: slow
            # Motia 0.17 spawns a process per step call: 32 at once answer nothing within a run (wrk's
            # timeouts), so it and Steppe's JS step are compared one request at a time, in turn
            slow = wrk_rounds({"js": urls["js"], "motia": f"http://127.0.0.1:{motia.port}/js"}, cfg.wrk_runs,
                              max(cfg.wrk_seconds, MOTIA_SECONDS), 1, lua, timeout=MOTIA_TIMEOUT)
    note = (f"{wrk_description(cfg.connections)}; {cfg.wrk_seconds} s per run; every server measured in turn, "
            "each round")
    fastapi, raw_runs = results["fastapi"], results["raw"]
    rows = [Row("S10", FASTAPI, "req/s", [r.rps for r in fastapi], "raw Starlette, uvicorn 1 worker",
                [r.rps for r in raw_runs], extra=figures(fastapi, raw_runs), note=note)]
    for lang, _, name in SUBJECTS:
        runs = results[lang]
        row = Row("S10", f"{name} vs FastAPI", "req/s", [r.rps for r in runs], FASTAPI, [r.rps for r in fastapi],
                  extra=figures(runs, fastapi), note=note)
        rows.append(row.check(TARGET, lambda m, ratio, x: ratio >= 1.0 and x["p99 ms"] <= x["baseline p99 ms"]
                              and x["errors"] == 0))
    if cfg.peers:
        name = f"JS API step vs Motia {MOTIA_VERSION}, one request at a time (wrk -c1)"
        if motia_skip is not None:
            rows.append(Row("S10", name, "req/s", extra={"skipped": motia_skip.removeprefix("skipped: ")},
                            note=motia_skip))
        else:
            js, peer = slow["js"], slow["motia"]
            rows.append(Row("S10", name, "req/s", [r.rps for r in js],
                            f"Motia {installed_version()}, `motia start`, the same JS step file",
                            [r.rps for r in peer], extra=figures(js, peer),
                            note=f"`--peers`, no target: wrk -t1 -c1 --timeout {MOTIA_TIMEOUT}s, "
                                 f"{max(cfg.wrk_seconds, MOTIA_SECONDS)} s per run; Motia 0.17 runs each step "
                                 "call in a new process, on the machine's Redis"))
    return rows
