"""At-least-once through crashes: kill -9 a runner, then the host itself, while 1,000 events flow through a
JS → Python → Ruby chain. Every hop appends `<id> <pid>` to its own file (one short O_APPEND write per
handling, atomic), so every handling is counted, duplicates included; the counts go to test-artifacts/."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from conftest import REPO, need, wait_until, write_project

N = 1000
HOPS = ("js", "py", "rb")

CHAIN = {
    "steps/first.step.js": """
        import { appendFileSync } from 'fs'
        import { join } from 'path'
        export const config = { type: 'event', name: 'ChainJs', subscribes: ['chain.start'], emits: ['chain.py'] }
        export const handler = async (input, { emit }) => {
          appendFileSync(join(process.env.STEPPE_PROJECT_ROOT, 'hits-js.log'), `${input.id} ${process.pid}\\n`)
          await emit({ topic: 'chain.py', data: { id: input.id } })
        }
    """,
    "steps/middle_step.py": """
        import asyncio
        import os

        config = {"type": "event", "name": "ChainPy", "subscribes": ["chain.py"], "emits": ["chain.rb"]}
        LOG = os.path.join(os.environ["STEPPE_PROJECT_ROOT"], "hits-py.log")

        async def handler(input, context):
            with open(LOG, "a") as f:
                f.write(f"{input['id']} {os.getpid()}\\n")
            await asyncio.sleep(0.02)  # keep some deliveries in flight on this runner
            event = {"topic": "chain.rb", "data": {"id": input["id"]}}
            if os.environ.get("CHAIN_EMIT_IDS"):  # the idempotent way: a retried handler re-emits the same id
                event["id"] = f"chain-rb-{input['id']}"
            await context.emit(event)
    """,
    "steps/last_step.rb": """
        def config
          { type: 'event', name: 'ChainRb', subscribes: ['chain.rb'], emits: [] }
        end

        def handler(input, context)
          File.write(File.join(ENV['STEPPE_PROJECT_ROOT'], 'hits-rb.log'), "#{input['id']} #{Process.pid}\\n",
                     mode: 'a')
        end
    """,
}


def hits(root: Path, hop: str) -> list[tuple[int, int]]:
    """(event id, pid) of every handling recorded by one hop; a torn last line (being written) is skipped."""
    path = root / f"hits-{hop}.log"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().split("\n")[:-1]:  # the last piece is "" or a line still being written
        parts = line.split()
        assert len(parts) == 2 and line == f"{parts[0]} {parts[1]}", f"a torn or interleaved line: {line!r}"
        out.append((int(parts[0]), int(parts[1])))
    return out




class Emitter:
    """Emits ids 0..N-1 through POST /__steppe/emit from a few threads; remembers which were accepted (202)."""

    def __init__(self, url: str, n: int = N, threads: int = 6) -> None:
        self.url, self.n, self.threads = url, n, threads
        self.accepted: set[int] = set()
        self.failed: dict[int, str] = {}
        self._lock = threading.Lock()
        self._next = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Emitter:
        self._thread.start()
        return self

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the emitter did not finish"

    def _take(self) -> int | None:
        with self._lock:
            if self._next >= self.n:
                return None
            self._next += 1
            return self._next - 1

    def _worker(self) -> None:
        with httpx.Client(timeout=10) as client:
            while (i := self._take()) is not None:
                try:
                    r = client.post(f"{self.url}/__steppe/emit", json={"topic": "chain.start", "data": {"id": i}})
                    ok, why = r.status_code == 202, f"status {r.status_code}"
                except httpx.HTTPError as e:
                    ok, why = False, f"{type(e).__name__}: {e}"
                with self._lock:
                    (self.accepted.add(i) if ok else self.failed.__setitem__(i, why))

    def _run(self) -> None:
        with ThreadPoolExecutor(self.threads) as pool:
            for _ in range(self.threads):
                pool.submit(self._worker)


def duplicate_report(root: Path, expected: set[int]) -> dict[str, dict[str, int]]:
    report = {}
    for hop in HOPS:
        counts = Counter(i for i, _ in hits(root, hop))
        report[hop] = {"handlings": sum(counts.values()), "distinct": len(counts),
                       "duplicates": sum(c - 1 for c in counts.values()),
                       "events_handled_more_than_once": sum(1 for c in counts.values() if c > 1),
                       "missing": len(expected - set(counts))}
    return report


def write_artifact(name: str, payload: dict, key: str | None = None) -> Path:
    """Write the summary (under `key` in the file, keeping the other keys, when several tests share it)."""
    out = REPO / "test-artifacts" / name
    out.parent.mkdir(exist_ok=True)
    payload = {**payload, "measuredAt": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if key is not None:
        try:
            whole = json.loads(out.read_text())
        except (OSError, ValueError):
            whole = {}
        payload = {**(whole if isinstance(whole, dict) and "hops" not in whole else {}), key: payload}
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\n{name}: {json.dumps(payload)}")
    return out


def queue_idle(host) -> bool:
    q = host.runners()["queue"]
    return q["ready"] == 0 and q["leased"] == 0


ENV = {"STEPPE_BUS": "sqlite", "STEPPE_RETRY_BASE": "0.3"}


@pytest.mark.parametrize("emit_ids", [False, True], ids=["plain-emit", "emit-with-id"])
def test_kill_9_the_python_runner_mid_chain_loses_nothing(tmp_path, start_host, emit_ids):
    need("ruby")
    need("node")
    root = write_project(tmp_path, CHAIN)
    host = start_host(root, env={**ENV, **({"CHAIN_EMIT_IDS": "1"} if emit_ids else {})})
    first_pid = host.runner_pid("python")
    emitter = Emitter(host.url).start()
    wait_until(lambda: len(hits(root, "py")) >= 250, 60, "250 events through the Python hop")
    handled_by_ruby_at_kill = len({i for i, _ in hits(root, "rb")})
    os.kill(first_pid, signal.SIGKILL)
    emitter.join(60)
    assert not emitter.failed, f"emits refused: {list(emitter.failed.items())[:5]}"
    assert emitter.accepted == set(range(N))
    assert handled_by_ruby_at_kill < N, "the kill came after the flow ended: it tested nothing"

    expected = set(range(N))
    wait_until(lambda: expected <= {i for i, _ in hits(root, "rb")}, 120, "every event at the Ruby hop")
    wait_until(lambda: queue_idle(host), 30, "an idle queue")
    dead = httpx.get(f"{host.url}/__steppe/dlq").json()
    assert dead == [], f"deliveries in the dead-letter store: {dead[:3]}"

    host.wait_log(f"python runner (pid {first_pid}) died: runner was killed by signal SIGKILL")
    second_pid = host.runner_pid("python")
    assert second_pid != first_pid
    py_pids = Counter(pid for _, pid in hits(root, "py"))
    assert py_pids[first_pid] > 0 and py_pids[second_pid] > 0, py_pids

    report = duplicate_report(root, expected)
    variant = "python hop emits with an id" if emit_ids else "plain emits"
    write_artifact("crash_runner_duplicates.json", {
        "test": "kill -9 the python runner mid-chain", "variant": variant, "events": N,
        "ruby_hop_done_at_kill": handled_by_ruby_at_kill,
        "python_handlings_by_pid": {"killed": py_pids[first_pid], "restarted": py_pids[second_pid]},
        "hops": report}, key="emit-with-id" if emit_ids else "plain-emit")
    for hop in HOPS:
        assert report[hop]["missing"] == 0, report
    assert report["js"]["duplicates"] == 0, "the JS hop's runner was not touched"
    if emit_ids:  # a re-run Python handler re-emits ids the bus has seen: Ruby must not see them twice
        assert report["rb"]["duplicates"] == 0, report


def test_kill_9_the_host_mid_chain_and_restart_loses_no_accepted_event(tmp_path, start_host):
    need("ruby")
    need("node")
    root = write_project(tmp_path, CHAIN)
    host = start_host(root, env=ENV)
    emitter = Emitter(host.url).start()
    wait_until(lambda: len(hits(root, "rb")) >= 150, 60, "150 events through the whole chain")
    host.proc.kill()
    host.proc.wait(10)
    emitter.join(60)
    accepted = set(emitter.accepted)
    handled_before = {i for i, _ in hits(root, "rb")}
    assert accepted, "nothing was accepted before the kill"
    assert accepted - handled_before, "every accepted event was done before the kill: it tested nothing"
    assert (root / ".steppe" / "queue.db").exists()

    again = start_host(root, env=ENV)
    wait_until(lambda: accepted <= {i for i, _ in hits(root, "rb")}, 120,
               "every accepted event at the Ruby hop after the restart")
    wait_until(lambda: queue_idle(again), 30, "an idle queue")
    dead = httpx.get(f"{again.url}/__steppe/dlq").json()
    assert dead == [], f"deliveries in the dead-letter store: {dead[:3]}"
    recovered = 0
    for line in again.logs().splitlines():
        if "interrupted by the last stop will run again" in line:
            recovered = int(line.split(" delivery(ies)")[0].split()[-1])

    report = duplicate_report(root, accepted)
    for hop in HOPS:
        assert report[hop]["missing"] == 0, report
    write_artifact("crash_host_duplicates.json", {
        "test": "kill -9 the host mid-chain, restart on the same .steppe/", "emitted": N,
        "accepted_before_kill": len(accepted), "refused_or_unanswered": len(emitter.failed),
        "ruby_hop_done_before_kill": len(handled_before & accepted),
        "leases_recovered_at_restart": recovered, "hops": report})
