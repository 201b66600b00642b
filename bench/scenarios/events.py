"""S4: event throughput. A JS step emits n events; one hop to a Python subscriber, and a three-hop chain
JS → Python → Ruby; through the durable SQLite queue and through the memory bus (the baseline)."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..loadgen import Burst, event_burst
from ..procs import Host, write_files
from ..projects import EVENT_PROJECT
from ..stats import Row
from . import Config

BUSES = ("memory", "sqlite")  # sqlite = the durable queue


def timeout_for(n: int) -> float:
    return 30 + n / 500


def one_hop(host: Host, n: int, run: str) -> Burst:
    return event_burst(host.url, "tick", n, run, "/count", timeout_for(n))


def chain(host: Host, n: int, run: str) -> Burst:
    return event_burst(host.url, "hop1", n, run, "/rbcount", timeout_for(n))


def event_host(work: Path, bus: str, extra: dict[str, str] | None = None) -> Host:
    root = work / f"events-{bus}"
    shutil.rmtree(root, ignore_errors=True)
    return Host(write_files(root, {**EVENT_PROJECT, **(extra or {})}), bus=bus)


def run(cfg: Config, work: Path) -> list[Row]:
    got: dict[tuple[str, str], list[Burst]] = {(kind, bus): [] for kind in ("hop", "chain") for bus in BUSES}
    with event_host(work, "memory") as memory, event_host(work, "sqlite") as durable:
        hosts = {"memory": memory.ready(), "sqlite": durable.ready()}
        for bus, host in hosts.items():  # warm-up: runners, JIT, SQLite files
            one_hop(host, min(cfg.events_n, 500), f"warm-{bus}")
            chain(host, min(cfg.chain_n, 200), f"warmchain-{bus}")
        for r in range(cfg.runs):  # interleaved, so drift in machine load hits both buses alike
            for bus, host in hosts.items():
                got["hop", bus].append(one_hop(host, cfg.events_n, f"hop-{bus}-{r}"))
            for bus, host in hosts.items():
                got["chain", bus].append(chain(host, cfg.chain_n, f"chain-{bus}-{r}"))
    rows = []
    for kind, label, n in (("hop", "one hop JS → Python", cfg.events_n),
                           ("chain", "three hops JS → Python → Ruby", cfg.chain_n)):
        for bus in ("sqlite", "memory"):
            bursts = got[kind, bus]
            is_durable = bus == "sqlite"
            row = Row("S4", f"{label}, {'durable queue' if is_durable else 'memory bus'}", "handled events/s",
                      [b.rate for b in bursts], extra={"events per run": n, "lost": sum(b.lost for b in bursts),
                                                       "redelivered": sum(b.handled - b.distinct for b in bursts)},
                      note="end to end: from the emitting request to the last event handled; lost = emitted "
                           "but not handled within the timeout")
            if is_durable:
                row.baseline = f"memory bus, {label}"
                row.baseline_samples = [b.rate for b in got[kind, "memory"]]
            if is_durable:  # issue 13: one hop ≥ 0.80 of the memory bus, three hops ≥ 0.90
                least = 0.80 if kind == "hop" else 0.90
                row.check(f"≥ {least:.2f} of memory bus, zero lost",
                          lambda m, ratio, x, least=least: ratio >= least and x["lost"] == 0)
            else:
                row.check("zero lost", lambda m, ratio, x: x["lost"] == 0)
            rows.append(row)
    return rows
