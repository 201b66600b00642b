"""The scenarios of issues 5 and 13, in the order they run, and the knobs a full or a --quick run uses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..stats import Row


@dataclass
class Config:
    runs: int = 5  # repetitions of each measurement (subject and baseline interleaved)
    wrk_runs: int = 5  # repetitions of the wrk measurements (S1–S3), each wrk_seconds long
    wrk_seconds: int = 3
    wrk_warmup: int = 2  # seconds of wrk per server before measuring (0: none)
    connections: int = 32
    events_n: int = 20000  # events per one-hop burst (S4)
    chain_n: int = 10000  # events per three-hop burst (S4)
    ping_seq: int = 5000  # sequential pings (S5)
    ping_pipe: int = 20000  # pipelined pings (S5)
    ping_warm: int = 500
    state_k: int = 2000  # set+get pairs per handler call (S6)
    cold_runs: int = 5  # cold starts of each server (S7)
    reload_timeout: float = 5.0  # seconds to wait for an edited step's new code (S7)
    leak_bursts: int = 5  # one-hop bursts on one host for the leak check (S8)
    peers: bool = False  # S10: the optional peers too (Motia), not only FastAPI
    quick: bool = False

    @classmethod
    def quick_smoke(cls) -> Config:
        return cls(runs=1, wrk_runs=1, wrk_seconds=1, wrk_warmup=0, events_n=500, chain_n=300, ping_seq=300,
                   ping_pipe=2000, ping_warm=50, state_k=100, cold_runs=1, reload_timeout=3.0, leak_bursts=2,
                   quick=True)


Scenario = Callable[[Config, Path], list[Row]]


def registry() -> list[tuple[str, str, Scenario]]:
    """(key, scenario ids, run function) in running order."""
    from . import api, events, latency, memory, peers, protocol, redis, startup, state, workbench

    return [("api", "S1 S2 S3", api.run), ("events", "S4", events.run), ("protocol", "S5", protocol.run),
            ("state", "S6", state.run), ("startup", "S7", startup.run), ("memory", "S8", memory.run),
            ("latency", "S9", latency.run), ("peers", "S10", peers.run), ("redis", "R1", redis.run),
            ("workbench", "W1", workbench.run)]
