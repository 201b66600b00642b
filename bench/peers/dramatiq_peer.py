"""The Dramatiq peer of R1 (issue 12): the one-hop work of the Redis bench — receive an event, write one
state key in Redis — done by Dramatiq with its Redis broker and one worker process (`dramatiq` CLI,
`--processes 1`, its default 8 threads). Measured end to end as Steppe's burst is: from the first message
sent until the worker has written the state key of every message.

The worker's module is dramatiq_worker (its broker and actor, configured from the environment); this
one starts the worker and sends. Dramatiq is a test extra; `missing()` says why the peer row is skipped
when it is not installed.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

from ..procs import stop_process

REPO = Path(__file__).resolve().parents[2]
URL_ENV, NAMESPACE_ENV = "STEPPE_PEER_REDIS_URL", "STEPPE_PEER_NAMESPACE"  # as dramatiq_worker reads them


def missing() -> str | None:
    """Why the peer cannot run here, or None."""
    try:
        import dramatiq  # noqa: F401
        from dramatiq.brokers.redis import RedisBroker  # noqa: F401
    except ImportError as e:
        return f"dramatiq[redis] is not installed ({e}); ./scripts/setup-tests installs it"
    return None


class DramatiqPeer:
    """A Dramatiq worker process on its own namespace of the Redis at `url`, and the sender."""

    def __init__(self, url: str, namespace: str, log: Path) -> None:
        self.url, self.namespace = url, namespace
        env = {**os.environ, URL_ENV: url, NAMESPACE_ENV: namespace, "PYTHONPATH": str(REPO)}
        self._log = log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "dramatiq", "bench.peers.dramatiq_worker",
                                      "--processes", "1", "--skip-logging"], cwd=REPO, env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        self._r = redis.Redis.from_url(url)
        self._worker: Any = None

    def burst(self, n: int, run: str, timeout: float) -> tuple[int, float]:
        """Send n messages and wait until the worker wrote all n state keys: (distinct handled, seconds)."""
        if self._worker is None:  # the same broker and actor in this process, to send
            os.environ.update({URL_ENV: self.url, NAMESPACE_ENV: self.namespace})
            self._worker = importlib.import_module("bench.peers.dramatiq_worker")
        key = self._worker.state_key(run)
        started = time.perf_counter()
        for i in range(n):
            self._worker.handle.send(run, i)
        done = 0
        while time.perf_counter() - started < timeout:
            done = int(self._r.hlen(key))
            if done >= n or self.proc.poll() is not None:
                break
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        self._r.delete(key)
        return done, elapsed

    def close(self) -> None:
        stop_process(self.proc)
        self._log.close()
        keys = list(self._r.scan_iter(match=self.namespace + "*", count=1000))
        if keys:
            self._r.delete(*keys)
        self._r.close()
