"""S10's optional peer: Motia 0.17 from npm serving the same JS API step (`--peers`). Installed once by
bench/peers/setup-motia into bench/peers/motia/node_modules, never at bench run time; without it (or
without what it needs) its row is skipped with the reason.

Motia 0.17 keeps its state, traces and queues in Redis. Left alone, `motia start` would fetch and build
its own Redis (redis-memory-server) and npm-install its Workbench plugins; bench/peers/motia/motia.config.js
turns both off, and this module points it at the machine's Redis (a database of its own, its `motia:*`
keys deleted afterwards) with its analytics off (nothing goes to the network)."""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import redis

from .procs import REPO, Server

MOTIA_DIR = REPO / "bench" / "peers" / "motia"
MOTIA_VERSION = "0.17"
MOTIA_CLI = MOTIA_DIR / "node_modules" / "motia" / "dist" / "cli.mjs"
_REDIS = urlparse(os.environ.get("STEPPE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
REDIS_HOST, REDIS_PORT = _REDIS.hostname or "127.0.0.1", _REDIS.port or 6379
REDIS_DB = 13  # Motia's keys have no prefix to choose: a database of their own, apart from Steppe's


def installed_version() -> str:
    return str(json.loads((MOTIA_DIR / "node_modules" / "motia" / "package.json").read_text())["version"])


def why_not_motia() -> str | None:
    """Why the Motia peer cannot run on this machine ("skipped: ..."), or None when it can."""
    if not (MOTIA_DIR / "node_modules").is_dir():
        return "skipped: bench/peers/motia/node_modules is missing (run bench/peers/setup-motia once)"
    if not MOTIA_CLI.exists():
        return f"skipped: {MOTIA_CLI.relative_to(REPO)} is missing (re-run bench/peers/setup-motia)"
    if shutil.which("node") is None:
        return "skipped: no node on PATH"
    try:
        redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_timeout=2).ping()
    except redis.RedisError as exc:
        return (f"skipped: Motia 0.17 needs Redis and none answers at {REDIS_HOST}:{REDIS_PORT} ({exc}); "
                "its own redis-memory-server would download and build Redis at run time")
    return None


def forget_keys() -> None:
    r = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    for batch in _batches(r.scan_iter("motia:*", count=1000), 1000):
        r.delete(*batch)


def _batches(keys: Iterator[bytes], n: int) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for key in keys:
        batch.append(key)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


def motia_port() -> int:
    """A free port Motia can use: its Workbench opens Vite's HMR socket on 21678 + port, so the port must
    stay below 65536 - 21678 (a free port from the kernel is often above)."""
    for _ in range(100):
        port = random.randrange(20000, 65536 - 21678)
        with socket.socket() as s, socket.socket() as hmr:
            try:
                s.bind(("127.0.0.1", port))
                hmr.bind(("127.0.0.1", 21678 + port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port for Motia below 43858")


@contextmanager
def motia_server(work: Path) -> Iterator[Server]:
    """`motia start` on a copy of bench/peers/motia (node_modules linked, not copied) on a free port;
    stopped, and its Redis keys deleted, on the way out."""
    project = work / "motia"
    shutil.copytree(MOTIA_DIR, project, ignore=shutil.ignore_patterns("node_modules", ".motia", "types.d.ts"))
    (project / "node_modules").symlink_to(MOTIA_DIR / "node_modules", target_is_directory=True)
    port = motia_port()
    env = {"MOTIA_REDIS_HOST": REDIS_HOST, "MOTIA_REDIS_PORT": str(REDIS_PORT), "MOTIA_REDIS_DB": str(REDIS_DB),
           "MOTIA_ANALYTICS_DISABLED": "true"}
    server = Server([shutil.which("node") or "node", str(MOTIA_CLI), "start", "--port", str(port), "--host",
                     "127.0.0.1"], port, work / f"motia-{port}.log", cwd=project, env=env)
    try:
        yield server
    finally:
        server.stop()
        forget_keys()
