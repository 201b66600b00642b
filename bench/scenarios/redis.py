"""R1: the Redis backends (issue 12) against SQLite and memory, in the same run:

- S4's one hop (a JS step emits n events, a Python step handles them) and three hops (JS → Python →
  Ruby) through the Redis queue, the SQLite queue and the memory bus;
- 1 host against 2 hosts sharing one Redis (the burst is sent to one host; both take deliveries);
- the Dramatiq peer (bench/peers): the same one-hop work — receive an event, write one state key in
  Redis — by Dramatiq's Redis broker and one worker process, against a Steppe host on Redis (queue and
  state) whose Python handler writes one state key per event;
- S6's state calls (k × set + get inside a handler) and S1's JS API step doing a state get + set under
  wrk, on Redis state against SQLite state.

Each Redis host has a key prefix of its own, deleted afterwards. Redis is the machine's (127.0.0.1:6379,
or STEPPE_BENCH_REDIS_URL), sharing this machine's cores with the hosts it serves. STEPPE_BENCH_R1_PARTS
(comma-separated: events, peer, state; default all) runs only some of these groups of rows.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from pathlib import Path

import httpx
import redis

from ..loadgen import POST_LUA, Burst, WrkResult, answer, wrk, wrk_description
from ..peers.dramatiq_peer import DramatiqPeer, missing
from ..procs import Host, write_files
from ..projects import EVENT_PROJECT, STATE_PROJECT
from ..stats import Row, median
from . import Config
from .events import chain, one_hop, timeout_for
from .state import calls_per_second

REDIS_URL = os.environ.get("STEPPE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
BUSES = ("redis", "sqlite", "memory")
STATE_LANGS = {"python": "Python", "js": "JS"}
PARTS = ("events", "peer", "state")
PEER_RUNS = 3  # the Dramatiq peer is slow: at most this many runs of it (and of its Steppe subject)

# the one-hop subscriber, writing one state key per event before counting it (the Dramatiq peer's work)
STATE_HOP_PROJECT = {**EVENT_PROJECT, "steps/count_step.py": """
    from .tally import count

    config = {"type": "event", "name": "Count", "subscribes": ["tick"], "emits": [],
              "infrastructure": {"queue": {"concurrency": 200}}}

    async def handler(data, context):
        await context.state.set("hop", f"{data['run']}:{data['i']}", data)
        count(data)
"""}
# S1's JS API step, reading and writing one state key per request
STATE_API_PROJECT = {"steps/hello.step.js": """
    exports.config = { type: 'api', name: 'HelloState', path: '/js', method: 'POST', emits: [] }
    exports.handler = async (req, { state }) => {
      const seen = await state.get('api', req.body.name)
      await state.set('api', req.body.name, { n: ((seen && seen.n) || 0) + 1 })
      return { status: 200, body: { hello: req.body.name } }
    }
"""}


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
    wanted = [w.strip() for w in os.environ.get("STEPPE_BENCH_R1_PARTS", ",".join(PARTS)).split(",") if w.strip()]
    if unknown := set(wanted) - set(PARTS):
        raise ValueError(f"STEPPE_BENCH_R1_PARTS: unknown part(s) {sorted(unknown)} (expected some of {PARTS})")
    parts = {"events": _events, "peer": _peer, "state": _state}
    try:
        return [row for name in PARTS if name in wanted for row in parts[name](cfg, work, prefix)]
    finally:
        _drop(prefix)


def _burst_row(name: str, n: int, bursts: list[Burst], baseline: str, base: list[Burst], note: str) -> Row:
    return Row("R1", name, "handled events/s", [b.rate for b in bursts], baseline, [b.rate for b in base],
               extra={"events per run": n, "lost": sum(b.lost for b in bursts),
                      "redelivered": sum(b.handled - b.distinct for b in bursts)}, note=note)


def _events(cfg: Config, work: Path, prefix: str) -> list[Row]:
    got: dict[tuple[str, str], list[Burst]] = {(kind, bus): [] for kind in ("hop", "chain") for bus in BUSES}
    got["hop", "pair"] = []
    with _host(work, "events-redis", EVENT_PROJECT, prefix + "ev:", bus="redis") as on_redis, \
            _host(work, "events-sqlite", EVENT_PROJECT, prefix, bus="sqlite") as on_sqlite, \
            _host(work, "events-memory", EVENT_PROJECT, prefix, bus="memory") as on_memory, \
            _host(work, "pair-a", EVENT_PROJECT, prefix + "pair:", bus="redis") as pair_a, \
            _host(work, "pair-b", EVENT_PROJECT, prefix + "pair:", bus="redis") as pair_b:
        hosts = {"redis": on_redis.ready(), "sqlite": on_sqlite.ready(), "memory": on_memory.ready()}
        pair = [pair_a.ready(), pair_b.ready()]
        for bus, host in hosts.items():
            one_hop(host, min(cfg.events_n, 500), f"warm-{bus}")
            chain(host, min(cfg.chain_n, 200), f"warmchain-{bus}")
        _spread_burst(pair, min(cfg.events_n, 500), "warm-pair")
        for r in range(cfg.runs):  # interleaved, so drift in machine load hits every setup alike
            for bus, host in hosts.items():
                got["hop", bus].append(one_hop(host, cfg.events_n, f"hop-{bus}-{r}"))
            got["hop", "pair"].append(_spread_burst(pair, cfg.events_n, f"hop-pair-{r}"))
            for bus, host in hosts.items():
                got["chain", bus].append(chain(host, cfg.chain_n, f"chain-{bus}-{r}"))
    rows = []
    for kind, label, n in (("hop", "one hop JS → Python", cfg.events_n),
                           ("chain", "three hops JS → Python → Ruby", cfg.chain_n)):
        for baseline in ("sqlite", "memory"):
            row = _burst_row(f"{label}, Redis queue (vs {baseline})", n, got[kind, "redis"],
                             f"{baseline} {'queue' if baseline == 'sqlite' else 'bus'}, {label}",
                             got[kind, baseline], "end to end, as S4; Redis on this machine")
            if kind == "hop" and baseline == "sqlite":
                row.check("≥ 5,000 events/s, ≥ 0.5 of the SQLite queue, zero lost",
                          lambda m, ratio, x: m >= 5000 and ratio >= 0.5 and x["lost"] == 0)
            else:
                row.check("zero lost", lambda m, ratio, x: x["lost"] == 0)
            rows.append(row)
        if kind == "hop":
            rows.append(_burst_row(
                "one hop JS → Python, 2 hosts on one Redis", n, got["hop", "pair"], "1 host on Redis, one hop",
                got["hop", "redis"], "the burst is sent to one host of two sharing one Redis (prefix); both take "
                "its deliveries. On 2 cores the two hosts, their six runners and Redis share the same CPUs: a "
                "second host adds no CPU here, only a second event loop").check(
                "zero lost", lambda m, ratio, x: x["lost"] == 0))
    return rows


def _spread_burst(hosts: list[Host], n: int, run: str) -> Burst:
    """S4's one hop sent to the first host, handled by whichever host takes each delivery: the counts of
    every host's Python step added up (an event handled on two hosts counts as redelivered)."""
    timeout = timeout_for(n)
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(httpx.Client(base_url=h.url, timeout=timeout)) for h in hosts]
        started = time.perf_counter()
        clients[0].post("/burst", json={"n": n, "run": run, "topic": "tick"}).raise_for_status()
        distinct = handled = 0
        while time.perf_counter() - started < timeout:
            counts = [c.get(f"/count/{run}").json() for c in clients]
            distinct, handled = sum(x["distinct"] for x in counts), sum(x["handled"] for x in counts)
            if distinct >= n:
                break
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        for c in clients:
            c.get(f"/count/{run}", params={"forget": "1"})
    return Burst(n, elapsed, min(distinct, n), handled)


def _peer(cfg: Config, work: Path, prefix: str) -> list[Row]:
    name = "Dramatiq 2 (Redis broker, 1 worker process): receive an event, write one state key"
    if why := missing():
        row = Row("R1", "one hop with a state write, Redis queue + Redis state (vs Dramatiq)", "handled events/s",
                  note=f"Dramatiq peer skipped: {why}")
        return [row]
    runs = min(cfg.runs, PEER_RUNS)
    steppe: list[Burst] = []
    peer_rates: list[float] = []
    lost = 0
    peer = DramatiqPeer(REDIS_URL, prefix + "dramatiq", work / "dramatiq-peer.log")
    try:
        with _host(work, "state-hop", STATE_HOP_PROJECT, prefix + "hop:", backend="redis") as host:
            host.ready()
            one_hop(host, min(cfg.events_n, 500), "warm")
            peer.burst(min(cfg.events_n, 500), "warm", timeout_for(cfg.events_n))
            for r in range(runs):
                steppe.append(one_hop(host, cfg.events_n, f"hop-{r}"))
                done, seconds = peer.burst(cfg.events_n, f"peer-{r}", timeout_for(cfg.events_n) * 4)
                peer_rates.append(done / seconds)
                lost += cfg.events_n - done
    finally:
        peer.close()
    row = _burst_row("one hop with a state write, Redis queue + Redis state (vs Dramatiq)", cfg.events_n, steppe,
                     name, [], "end to end for n events: Steppe as S4, the Python handler writing one state key per "
                               "event; Dramatiq from the first message sent to the last state key written")
    row.baseline_samples = peer_rates
    row.extra["peer lost"] = lost
    row.check("≥ 5× the Dramatiq peer, zero lost", lambda m, ratio, x: ratio >= 5 and x["lost"] == 0)
    return [row]


def _state(cfg: Config, work: Path, prefix: str) -> list[Row]:
    project = {**STATE_PROJECT, **STATE_API_PROJECT}
    with _host(work, "state-redis", project, prefix + "st:", state="redis") as on_redis, \
            _host(work, "state-sqlite", project, prefix, state="sqlite") as on_sqlite:
        hosts = {"redis": on_redis.ready(), "sqlite": on_sqlite.ready()}
        return _state_calls(cfg, hosts) + _state_api(cfg, work, hosts)


def _state_calls(cfg: Config, hosts: dict[str, Host]) -> list[Row]:
    got: dict[tuple[str, str], list[float]] = {(lang, s): [] for lang in STATE_LANGS for s in hosts}
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


def _state_api(cfg: Config, work: Path, hosts: dict[str, Host]) -> list[Row]:
    lua = work / "post.lua"
    lua.write_text(POST_LUA)
    results: dict[str, list[WrkResult]] = {store: [] for store in hosts}
    for store, host in hosts.items():
        got = answer(host.port, "/js")
        if got is None or got[0] != 200 or b'"ada"' not in got[1]:
            raise RuntimeError(f"the {store} state API step answered {got!r}")
        if cfg.wrk_warmup:
            wrk(f"{host.url}/js", cfg.wrk_warmup, cfg.connections, lua)
    for r in range(cfg.wrk_runs):
        for store in (("redis", "sqlite") if r % 2 == 0 else ("sqlite", "redis")):
            results[store].append(wrk(f"{hosts[store].url}/js", cfg.wrk_seconds, cfg.connections, lua))
    runs, base = results["redis"], results["sqlite"]
    row = Row("R1", "JS API step with a state get + set, Redis state", "req/s", [r.rps for r in runs],
              "same step, SQLite state", [r.rps for r in base],
              extra={"p50 ms": median([r.p50_ms for r in runs]), "p99 ms": median([r.p99_ms for r in runs]),
                     "baseline p99 ms": median([r.p99_ms for r in base]), "errors": sum(r.bad for r in runs)},
              note=f"{wrk_description(cfg.connections)}; {cfg.wrk_seconds} s per run; one hot key")
    row.check("no errors", lambda m, ratio, x: x["errors"] == 0)
    return [row]
