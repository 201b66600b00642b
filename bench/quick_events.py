"""Quick event-throughput check (issue 3): a JS step emits N events, a Python step handles each; handled
events per second end to end, through the durable SQLite queue and through the memory queue, one run.

    .venv/bin/python bench/quick_events.py [--events 20000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx

STEPS = {
    "steps/burst.step.js": """
        exports.config = { type: 'api', name: 'Burst', path: '/burst', method: 'POST', emits: ['tick'] }
        exports.handler = async (req, { emit }) => {
          const n = req.body.n, batch = 200
          for (let i = 0; i < n; i += batch) {
            const emits = []
            for (let j = i; j < Math.min(n, i + batch); j++) emits.push(emit({ topic: 'tick', data: { i: j } }))
            await Promise.all(emits)
          }
          return { status: 200, body: { emitted: n } }
        }
    """,
    "steps/counter.py": """
        seen = set()
    """,
    "steps/count_step.py": """
        from .counter import seen
        config = {"type": "event", "name": "Count", "subscribes": ["tick"], "emits": [],
                  "infrastructure": {"queue": {"concurrency": 200}}}
        async def handler(input, context):
            seen.add(input["i"])
    """,
    "steps/read_step.py": """
        from .counter import seen
        config = {"type": "api", "name": "Read", "path": "/count", "method": "GET", "emits": []}
        async def handler(req, context):
            return {"status": 200, "body": {"count": len(seen)}}
    """,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_once(root: Path, bus: str, n: int) -> float:
    shutil.rmtree(root / ".steppe", ignore_errors=True)
    port = free_port()
    env = {**os.environ, "STEPPE_BUS": bus, "STEPPE_LOG_LEVEL": "error", "STEPPE_STATE": "memory"}
    proc = subprocess.Popen([sys.executable, "-m", "steppe.cli", "start", "--host", "127.0.0.1", "--port",
                             str(port), "--root", str(root)], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(400):
            try:
                httpx.get(f"{url}/__steppe/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        started = time.perf_counter()
        httpx.post(f"{url}/burst", json={"n": n}, timeout=300).raise_for_status()
        while (count := httpx.get(f"{url}/count").json()["count"]) < n:
            if time.perf_counter() - started > 300:
                raise RuntimeError(f"only {count} of {n} handled after 300 s")
            time.sleep(0.01)
        return n / (time.perf_counter() - started)
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="steppe-events-"))
    for rel, code in STEPS.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text(textwrap.dedent(code).lstrip())
    try:
        results: dict[str, list[float]] = {"memory": [], "sqlite": []}
        for _ in range(args.runs):  # interleaved, so drift in machine load hits both alike
            for bus in results:
                results[bus].append(run_once(work, bus, args.events))
        med = {bus: statistics.median(r) for bus, r in results.items()}
        print(f"| bus | handled events/s (median of {args.runs}) | min–max | ratio to memory |\n|---|---|---|---|")
        for bus, r in results.items():
            print(f"| {bus} | {med[bus]:,.0f} | {min(r):,.0f}–{max(r):,.0f} | {med[bus] / med['memory']:.2f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
