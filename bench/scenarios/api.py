"""S1–S3: API step round trip per language (and TS) vs the same handler in raw Starlette, under wrk."""

from __future__ import annotations

from pathlib import Path

from ..loadgen import POST_LUA, WrkResult, answer, wrk, wrk_description
from ..procs import Host, raw_starlette, write_files
from ..projects import API_ROUTES, api_project
from ..stats import Row, median
from . import Config

SUBJECTS = [("js", "S1", "JS API step"), ("ts", "S1", "TS API step"), ("python", "S2", "Python API step"),
            ("ruby", "S3", "Ruby API step")]
BASELINE = "raw Starlette, uvicorn 1 worker"
TARGET = "≥ 0.65 of baseline req/s and p99 ≤ 1.5× baseline p99, no errors"  # issue 13: same-run ratios only


def run(cfg: Config, work: Path) -> list[Row]:
    root = write_files(work / "api", api_project())
    lua = work / "post.lua"
    lua.write_text(POST_LUA)
    with raw_starlette(work) as raw, Host(root) as host:
        raw.wait_http("/")
        host.ready()
        targets = {"raw": (raw.port, "/hello"), **{lang: (host.port, API_ROUTES[lang]) for lang, _, _ in SUBJECTS}}
        for key, (port, path) in targets.items():  # each answers the small JSON before it is measured
            got = answer(port, path)
            if got is None or got[0] != 200 or b'"ada"' not in got[1]:
                raise RuntimeError(f"{key} at port {port} {path} answered {got!r}")
        urls = {key: f"http://127.0.0.1:{port}{path}" for key, (port, path) in targets.items()}
        if cfg.wrk_warmup:
            for url in urls.values():
                wrk(url, cfg.wrk_warmup, cfg.connections, lua)
        results: dict[str, list[WrkResult]] = {key: [] for key in urls}
        for _ in range(cfg.wrk_runs):  # interleaved: machine drift hits baseline and subjects alike
            for key, url in urls.items():
                results[key].append(wrk(url, cfg.wrk_seconds, cfg.connections, lua))
    base = results["raw"]
    rows = []
    for lang, scenario, name in SUBJECTS:
        runs = results[lang]
        row = Row(scenario, name, "req/s", [r.rps for r in runs], BASELINE, [r.rps for r in base],
                  extra={"p50 ms": median([r.p50_ms for r in runs]), "p99 ms": median([r.p99_ms for r in runs]),
                         "baseline p99 ms": median([r.p99_ms for r in base]),
                         "errors": sum(r.bad for r in runs)},
                  note=f"{wrk_description(cfg.connections)}; {cfg.wrk_seconds} s per run")
        row.check(TARGET, lambda m, ratio, x: ratio >= 0.65 and x["p99 ms"] <= 1.5 * x["baseline p99 ms"]
                  and x["errors"] == 0)
        rows.append(row)
    return rows
