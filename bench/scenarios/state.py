"""S6: state.set/get calls per second from a handler, SQLite and memory stores. The handler loops k times
over set + get and answers the time its loop took (measured inside the handler)."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx

from ..procs import Host, write_files
from ..projects import STATE_PROJECT, STATE_ROUTES
from ..stats import Row
from . import Config
from .protocol import pingpong

LANGS = {"python": ("Python", "python"), "js": ("JS", "node"), "ruby": ("Ruby", "ruby")}  # name, runner


def state_host(work: Path, store: str) -> Host:
    root = work / f"state-{store}"
    shutil.rmtree(root, ignore_errors=True)
    return Host(write_files(root, STATE_PROJECT), state=store)


def calls_per_second(host: Host, lang: str, k: int) -> float:
    r = httpx.post(f"{host.url}{STATE_ROUTES[lang]}", json={"k": k}, timeout=120)
    r.raise_for_status()
    body = r.json()
    return float(body["calls"]) / float(body["seconds"])


def run(cfg: Config, work: Path) -> list[Row]:
    got: dict[tuple[str, str], list[float]] = {(lang, s): [] for lang in LANGS for s in ("sqlite", "memory", "echo")}
    with state_host(work, "sqlite") as sqlite, state_host(work, "memory") as memory:
        hosts = {"sqlite": sqlite.ready(), "memory": memory.ready()}
        for host in hosts.values():
            for lang in LANGS:
                calls_per_second(host, lang, min(cfg.state_k, 200))  # warm-up
        for r in range(cfg.runs):
            for lang, (_, runner) in LANGS.items():
                for store in (("sqlite", "memory") if r % 2 == 0 else ("memory", "sqlite")):
                    got[lang, store].append(calls_per_second(hosts[store], lang, cfg.state_k))
                echo = pingpong(runner, "bare", cfg.ping_seq // 2, 10, cfg.ping_warm)
                got[lang, "echo"].append(1e6 / echo["p50_us"])
    rows = []
    note = f"{cfg.state_k} × (set + get) per handler call, timed inside the handler"
    for lang, (title, runner) in LANGS.items():
        rows.append(Row("S6", f"{title} handler, SQLite state", "calls/s", got[lang, "sqlite"],
                        "same handler, memory state", got[lang, "memory"], note=note))
        rows.append(Row("S6", f"{title} handler, memory state", "calls/s", got[lang, "memory"],
                        f"bare echo round trips/s ({runner}, 1/p50, S5's echo)", got[lang, "echo"],
                        note=note + "; the baseline is one bare pipe round trip per call, the physical limit"))
    return rows
