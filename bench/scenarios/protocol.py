"""S5: protocol round trip host → runner → host (`ping`) per language, vs a bare newline-JSON echo
between the same two interpreters. Each measurement is a fresh `python -m bench.pingpong` process."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from ..procs import PYTHON, REPO
from ..stats import Row, median
from . import Config

LANGS = {"python": "Python", "node": "Node", "ruby": "Ruby"}
BASELINE = "bare newline-JSON echo, same interpreters"


def pingpong(lang: str, impl: str, seq: int, pipe: int, warm: int) -> dict[str, Any]:
    """One `python -m bench.pingpong` run: {"p50_us", "p99_us", "pipe_msgs_s"} (None with pipe=0)."""
    out = subprocess.run([PYTHON, "-m", "bench.pingpong", "--lang", lang, "--impl", impl, "--seq", str(seq),
                          "--pipe", str(pipe), "--warm", str(warm)], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"pingpong {lang} {impl} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run(cfg: Config, work: Path) -> list[Row]:
    got: dict[tuple[str, str], list[dict[str, Any]]] = {(lang, impl): [] for lang in LANGS for impl in ("bare", "rpc")}
    for r in range(cfg.runs):
        for lang in LANGS:
            # alternate which goes first, so neither always meets the machine in the same mood
            for impl in (("bare", "rpc") if r % 2 == 0 else ("rpc", "bare")):
                got[lang, impl].append(pingpong(lang, impl, cfg.ping_seq, cfg.ping_pipe, cfg.ping_warm))
    rows = []
    note = (f"{cfg.ping_seq} sequential + {cfg.ping_pipe} pipelined pings per run; Steppe: RunnerRegistry + "
            "RunnerProcess + RpcConnection.call/request; echo: asyncio subprocess pipes + orjson; both on uvloop")
    for lang, title in LANGS.items():
        rpc, bare = got[lang, "rpc"], got[lang, "bare"]
        seq = Row("S5", f"{title} runner ping, sequential p50", "µs", [x["p50_us"] for x in rpc],
                  f"{BASELINE} p50", [x["p50_us"] for x in bare], higher_is_better=False,
                  extra={"p99 µs": median([x["p99_us"] for x in rpc]),
                         "baseline p99 µs": median([x["p99_us"] for x in bare])}, note=note)
        seq.check("p50 ≤ 1.5× bare echo", lambda m, ratio, x: ratio <= 1.5)
        pipe = Row("S5", f"{title} runner ping, pipelined", "msgs/s", [x["pipe_msgs_s"] for x in rpc],
                   f"{BASELINE}, pipelined", [x["pipe_msgs_s"] for x in bare], note=note)
        pipe.check("≥ 0.60 of bare echo", lambda m, ratio, x: ratio >= 0.6)  # issue 13 (was 0.5)
        rows += [seq, pipe]
    return rows
