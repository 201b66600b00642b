"""R1: the Redis backends (issue 12) against SQLite and memory, in the same run: S4's one hop (a JS step
emits n events, a Python step handles them) through the Redis queue, the SQLite queue and the memory bus;
S6's state calls (k × set + get inside a handler) on Redis state against SQLite state. Each Redis host has
a key prefix of its own, deleted afterwards. Redis is the machine's (127.0.0.1:6379, or
STEPPE_BENCH_REDIS_URL), shared with the hosts on this 2-core machine."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import redis

from ..loadgen import Burst
from ..procs import Host, write_files
from ..projects import EVENT_PROJECT, STATE_PROJECT
from ..stats import Row
from . import Config
from .events import one_hop
from .state import calls_per_second

REDIS_URL = os.environ.get("STEPPE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
BUSES = ("redis", "sqlite", "memory")
STATE_LANGS = {"python": "Python", "js": "JS"}


def _host(work: Path, name: str, files: dict[str, str], prefix: str, **settings: str) -> Host:
    root = work / name
    shutil.rmtree(root, ignore_errors=True)
    return Host(write_files(root, files), redis_url=REDIS_URL, redis_prefix=prefix, **settings)


def _drop(prefix: str) -> None:
    r = redis.Redis.from_url(REDIS_URL)
    keys = list(r.scan_iter(match=prefix + "*", count=1000))
    for i in range(0, len(keys), 1000):
        r.delete(*keys[i:i + 1000])
    r.close()


def run(cfg: Config, work: Path) -> list[Row]:
    prefix = f"steppe-bench:{uuid.uuid4().hex[:8]}:"
    try:
        return _events(cfg, work, prefix) + _state(cfg, work, prefix)
    finally:
        _drop(prefix)


def _events(cfg: Config, work: Path, prefix: str) -> list[Row]:
    got: dict[str, list[Burst]] = {bus: [] for bus in BUSES}
    with _host(work, "events-redis", EVENT_PROJECT, prefix + "ev:", bus="redis") as on_redis, \
            _host(work, "events-sqlite", EVENT_PROJECT, prefix, bus="sqlite") as on_sqlite, \
            _host(work, "events-memory", EVENT_PROJECT, prefix, bus="memory") as on_memory:
        hosts = {"redis": on_redis.ready(), "sqlite": on_sqlite.ready(), "memory": on_memory.ready()}
        for bus, host in hosts.items():
            one_hop(host, min(cfg.events_n, 500), f"warm-{bus}")
        for r in range(cfg.runs):
            for bus, host in hosts.items():
                got[bus].append(one_hop(host, cfg.events_n, f"hop-{bus}-{r}"))
    rows = []
    for bus, baseline in (("redis", "sqlite"), ("redis", "memory")):
        bursts = got[bus]
        row = Row("R1", f"one hop JS → Python, Redis queue (vs {baseline})", "handled events/s",
                  [b.rate for b in bursts], f"{baseline} {'queue' if baseline == 'sqlite' else 'bus'}, one hop",
                  [b.rate for b in got[baseline]],
                  extra={"events per run": cfg.events_n, "lost": sum(b.lost for b in bursts),
                         "redelivered": sum(b.handled - b.distinct for b in bursts)},
                  note="end to end, as S4; Redis on this machine")
        if baseline == "sqlite":
            row.check("≥ 5,000 events/s, ≥ 0.5 of the SQLite queue, zero lost",
                      lambda m, ratio, x: m >= 5000 and ratio >= 0.5 and x["lost"] == 0)
        rows.append(row)
    return rows


def _state(cfg: Config, work: Path, prefix: str) -> list[Row]:
    got: dict[tuple[str, str], list[float]] = {(lang, s): [] for lang in STATE_LANGS for s in ("redis", "sqlite")}
    with _host(work, "state-redis", STATE_PROJECT, prefix + "st:", state="redis") as on_redis, \
            _host(work, "state-sqlite", STATE_PROJECT, prefix, state="sqlite") as on_sqlite:
        hosts = {"redis": on_redis.ready(), "sqlite": on_sqlite.ready()}
        for host in hosts.values():
            for lang in STATE_LANGS:
                calls_per_second(host, lang, min(cfg.state_k, 200))
        for r in range(cfg.runs):
            for lang in STATE_LANGS:
                for store in (("redis", "sqlite") if r % 2 == 0 else ("sqlite", "redis")):
                    got[lang, store].append(calls_per_second(hosts[store], lang, cfg.state_k))
    rows = []
    for lang, title in STATE_LANGS.items():
        row = Row("R1", f"{title} handler, Redis state", "calls/s", got[lang, "redis"], "same handler, SQLite state",
                  got[lang, "sqlite"], note=f"{cfg.state_k} × (set + get) per handler call, timed inside the handler; "
                                            "each call is a round trip to Redis on this machine")
        row.check("≥ 50 % of SQLite state", lambda m, ratio, x: ratio >= 0.5)
        rows.append(row)
    return rows
