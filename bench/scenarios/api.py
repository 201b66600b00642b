"""S1–S3: API step round trip per language (and TS) vs the same handler in raw Starlette, under wrk."""

from __future__ import annotations

from pathlib import Path

from ..loadgen import POST_LUA, check_answers, wrk_description, wrk_rounds
from ..procs import Host, raw_starlette, write_files
from ..projects import API_ROUTES, api_project
from ..stats import Row, median
from . import Config

SUBJECTS = [("js", "S1", "JS API step"), ("ts", "S1", "TS API step"), ("python", "S2", "Python API step"),
            ("ruby", "S3", "Ruby API step")]
BASELINE = "raw Starlette, uvicorn 1 worker"
TARGET = "≥ 0.65 of baseline req/s and p99 ≤ 1.5× baseline p99, no errors"  # issue 13: same-run ratios only


def api_urls(baselines: dict[str, tuple[int, str]], host: Host) -> dict[str, str]:
    """URLs of the baselines' (port, path) and of the host's four API steps (keyed by language), each
    checked to answer the small JSON; the baselines first, in the order given."""
    targets = {**baselines, **{lang: (host.port, API_ROUTES[lang]) for lang, _, _ in SUBJECTS}}
    check_answers(targets)
    return {key: f"http://127.0.0.1:{port}{path}" for key, (port, path) in targets.items()}


def run(cfg: Config, work: Path) -> list[Row]:
    root = write_files(work / "api", api_project())
    lua = work / "post.lua"
    lua.write_text(POST_LUA)
    with raw_starlette(work) as raw, Host(root) as host:
        raw.wait_http("/")
        host.ready()
        urls = api_urls({"raw": (raw.port, "/hello")}, host)
        results = wrk_rounds(urls, cfg.wrk_runs, cfg.wrk_seconds, cfg.connections, lua, cfg.wrk_warmup)
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
