"""Many hosts as one app: three `steppe start` hosts on three ports share one Redis (under a key prefix of
this module's own) and one project. Work put on any host runs on all of them; a stream client on one host
sees the writes made by handlers on the others; a 1-second cron fires once per tick across the three;
kill -9 of one host in the middle of a JS → Python → Ruby chain loses no accepted event (duplicates are
counted and written to test-artifacts/many_hosts_kill.json).

Every hop appends `<id> <host tag>` to a file in the shared project (one short O_APPEND write each), so
every handling is counted, and where it ran. The chain is 600 events, not 3,000, to keep the module near
a minute on a 2-core machine."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis
from redis_support import REDIS_URL, need_redis
from websockets.asyncio.client import connect

from conftest import REPO, RunningHost, need, wait_until, write_project

N = 600
TAGS = ("A", "B", "C")
TOKEN = "many-hosts-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

PROJECT = {
    "steps/start_step.py": """
        import os

        config = {"type": "api", "name": "Start", "path": "/chain", "method": "POST", "emits": ["chain.start"]}

        async def handler(req, context):
            await context.emit({"topic": "chain.start", "data": {"id": req["body"]["id"]}})
            return {"status": 202, "body": {"host": os.environ["HOST_TAG"]}}
    """,
    "steps/first.step.js": """
        import { appendFileSync } from 'fs'
        import { join } from 'path'
        export const config = { type: 'event', name: 'ChainJs', subscribes: ['chain.start'], emits: ['chain.py'] }
        export const handler = async (input, { emit }) => {
          appendFileSync(join(process.env.STEPPE_PROJECT_ROOT, 'hits-js.log'), `${input.id} ${process.env.HOST_TAG}\\n`)
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
                f.write(f"{input['id']} {os.environ['HOST_TAG']}\\n")
            await asyncio.sleep(0.02)  # keep some deliveries in flight on every host
            await context.emit({"topic": "chain.rb", "data": {"id": input["id"]}})
    """,
    "steps/last_step.rb": """
        def config
          { type: 'event', name: 'ChainRb', subscribes: ['chain.rb'], emits: [] }
        end

        def handler(input, context)
          File.write(File.join(ENV['STEPPE_PROJECT_ROOT'], 'hits-rb.log'), "#{input['id']} #{ENV['HOST_TAG']}\\n",
                     mode: 'a')
        end
    """,
    "steps/board.stream.ts": """
        export const config = { name: 'board', schema: { type: 'object' } }
    """,
    "steps/write_step.py": """
        import os

        config = {"type": "api", "name": "Write", "path": "/board", "method": "POST", "emits": []}

        async def handler(req, context):
            tag = os.environ["HOST_TAG"]
            await context.streams.board.set("wall", req["body"]["id"], {"by": tag})
            return {"status": 200, "body": {"host": tag}}
    """,
    "steps/picky_step.py": """
        import os

        config = {"type": "event", "name": "Picky", "subscribes": ["picky"], "emits": [],
                  "infrastructure": {"queue": {"maxRetries": 1}}}
        ROOT = os.environ["STEPPE_PROJECT_ROOT"]

        async def handler(input, context):
            if not os.path.exists(os.path.join(ROOT, "fixed")):
                raise ValueError(f"not yet: {input['n']}")
            with open(os.path.join(ROOT, "picky.log"), "a") as f:
                f.write(f"{input['n']} {os.environ['HOST_TAG']}\\n")
    """,
    "steps/solo_step.py": """
        import asyncio
        import os
        import time

        config = {"type": "event", "name": "Solo", "subscribes": ["solo"], "emits": [],
                  "infrastructure": {"queue": {"concurrency": 1}}}
        LOG = os.path.join(os.environ["STEPPE_PROJECT_ROOT"], "solo.log")

        async def handler(input, context):
            start = time.time()
            await asyncio.sleep(0.1)
            with open(LOG, "a") as f:
                f.write(f"{start:.4f},{time.time():.4f} {os.environ['HOST_TAG']}\\n")
    """,
    "steps/tick_step.py": """
        import os
        import time

        config = {"type": "cron", "name": "Tick", "cron": "* * * * * *", "emits": []}
        LOG = os.path.join(os.environ["STEPPE_PROJECT_ROOT"], "ticks.log")

        async def handler(context):
            with open(LOG, "a") as f:
                f.write(f"{int(time.time())} {os.environ['HOST_TAG']}\\n")
    """,
}


def lines(root: Path, name: str) -> list[tuple[str, str]]:
    """(first, second) word of every whole line of a hits file (a line being written is skipped)."""
    path = root / name
    if not path.exists():
        return []
    out = []
    for line in path.read_text().split("\n")[:-1]:
        parts = line.split()
        assert len(parts) == 2, f"a torn or interleaved line: {line!r}"
        out.append((parts[0], parts[1]))
    return out


def hits(root: Path, hop: str) -> list[tuple[int, str]]:
    return [(int(i), tag) for i, tag in lines(root, f"hits-{hop}.log")]


class Cluster:
    def __init__(self, root: Path, prefix: str) -> None:
        self.root, self.prefix = root, prefix
        env = {"STEPPE_BACKEND": "redis", "STEPPE_REDIS_URL": REDIS_URL, "STEPPE_REDIS_PREFIX": prefix,
               "STEPPE_REDIS_LEASE": "2", "STEPPE_RETRY_BASE": "0.3", "STEPPE_ADMIN_TOKEN": TOKEN}
        self.hosts = {tag: RunningHost(root, [], {**env, "HOST_TAG": tag}, mode="start") for tag in TAGS}

    def stop(self) -> None:
        for host in self.hosts.values():
            host.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    need_redis()
    need("ruby")
    need("node")
    root = write_project(tmp_path_factory.mktemp("many-hosts"), PROJECT)
    prefix = f"steppe-test:{uuid.uuid4().hex[:12]}:"
    c = Cluster(root, prefix)
    try:
        for host in c.hosts.values():
            host.wait_ready(60)
        yield c
    finally:
        c.stop()
        r = redis.Redis.from_url(REDIS_URL)
        keys = list(r.scan_iter(match=prefix + "*", count=1000))
        if keys:
            r.delete(*keys)
        r.close()


def test_a_one_second_cron_fires_once_per_tick_across_the_hosts(cluster: Cluster) -> None:
    start = int(time.time()) + 1
    time.sleep(7.5)
    end = int(time.time()) - 1
    ticks = [(int(t), tag) for t, tag in lines(cluster.root, "ticks.log") if start <= int(t) < end]
    per_second = Counter(t for t, _ in ticks)
    assert sorted(per_second) == list(range(start, end)), f"a tick was missed: {sorted(per_second)}"
    assert set(per_second.values()) == {1}, f"a tick ran on more than one host: {ticks}"


def test_api_calls_on_any_host_run_the_flow_on_all_of_them(cluster: Cluster) -> None:
    hosts = list(cluster.hosts.values())
    ids = range(10_000, 10_090)
    with httpx.Client(timeout=10) as client:
        for n, i in enumerate(ids):
            r = client.post(f"{hosts[n % 3].url}/chain", json={"id": i})
            assert r.status_code == 202 and r.json()["host"] == TAGS[n % 3], r.text
    wait_until(lambda: set(ids) <= {i for i, _ in hits(cluster.root, "rb")}, 60, "every flow at the Ruby hop")
    for hop in ("js", "py", "rb"):
        where = {tag for i, tag in hits(cluster.root, hop) if i in ids}
        assert where == set(TAGS), f"the {hop} hop ran only on {where}"


async def _watch_wall(cluster: Cluster) -> list[dict]:
    a, b, c = cluster.hosts["A"], cluster.hosts["B"], cluster.hosts["C"]
    seen: list[dict] = []
    async with connect(a.url.replace("http://", "ws://") + "/") as ws:
        await ws.send(json.dumps({"type": "join", "data": {"streamName": "board", "groupId": "wall",
                                                           "subscriptionId": "s1"}}))
        first = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert first["event"]["type"] == "sync", first
        async with httpx.AsyncClient(timeout=10) as http:
            for n, host in enumerate((b, c, b, c)):
                r = await http.post(f"{host.url}/board", json={"id": f"note-{n}"})
                assert r.status_code == 200, r.text
        while len(seen) < 4:
            seen.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
    return seen


def test_a_stream_client_on_one_host_sees_writes_made_on_the_others(cluster: Cluster) -> None:
    seen = asyncio.run(_watch_wall(cluster))
    assert [(m["id"], m["event"]["type"], m["event"]["data"]["by"]) for m in seen] == [
        ("note-0", "create", "B"), ("note-1", "create", "C"), ("note-2", "create", "B"), ("note-3", "create", "C")]
    stamps = [m["timestamp"] for m in seen]
    assert stamps == sorted(stamps)


def test_queue_concurrency_is_global_across_the_hosts(cluster: Cluster) -> None:
    # each host is woken by the emits it accepts and tries to take at once: with a per-host cap, three
    # runs would overlap
    hosts = list(cluster.hosts.values())
    with httpx.Client(timeout=10, headers=AUTH) as client:
        for n in range(12):
            r = client.post(f"{hosts[n % 3].url}/__steppe/emit", json={"topic": "solo", "data": {"n": n}})
            assert r.status_code == 202, r.text
    runs = wait_until(lambda: len(got := lines(cluster.root, "solo.log")) >= 12 and got, 60, "12 runs of Solo")
    spans = sorted(tuple(map(float, span.split(","))) for span, _ in runs)
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start >= end - 0.005, f"two runs of a concurrency-1 step overlapped: {spans}"


def steppe_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "steppe.cli", *args], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "STEPPE_ADMIN_TOKEN": TOKEN})


def test_one_dead_letter_store_for_all_hosts_through_steppe_dlq(cluster: Cluster) -> None:
    a, b, c = (cluster.hosts[t] for t in TAGS)
    r = httpx.post(f"{a.url}/__steppe/emit", json={"topic": "picky", "data": {"n": 7}}, headers=AUTH, timeout=10)
    assert r.status_code == 202, r.text

    def listed() -> list[dict]:
        out = steppe_cli("dlq", "list", "--json", "--step", "Picky", "--url", b.url)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    [letter] = wait_until(listed, 30, "the dead letter, listed through another host")
    assert letter["event"]["data"] == {"n": 7} and "not yet: 7" in letter["error"]
    (cluster.root / "fixed").write_text("")
    out = steppe_cli("dlq", "replay", "--step", "Picky", "--url", c.url)
    assert out.returncode == 0, out.stdout + out.stderr
    wait_until(lambda: lines(cluster.root, "picky.log"), 30, "the replayed delivery handled")
    assert [n for n, _ in lines(cluster.root, "picky.log")] == ["7"]
    assert listed() == []


class Emitter:
    """Emits ids 0..N-1 through POST /__steppe/emit, spread over the hosts still alive; remembers which were
    accepted (202)."""

    def __init__(self, cluster: Cluster, threads: int = 6, first: int = 0) -> None:
        self.alive = list(cluster.hosts.values())
        self.first = first
        self.accepted: set[int] = set()
        self.failed: dict[int, str] = {}
        self._lock = threading.Lock()
        self._next = 0
        self._thread = threading.Thread(target=self._run, args=(threads,), daemon=True)
        self._thread.start()

    def _take(self) -> int | None:
        with self._lock:
            if self._next >= N:
                return None
            self._next += 1
            return self.first + self._next - 1

    def _worker(self) -> None:
        with httpx.Client(timeout=10, headers=AUTH) as client:
            while (i := self._take()) is not None:
                host = self.alive[i % len(self.alive)]
                try:
                    r = client.post(f"{host.url}/__steppe/emit", json={"topic": "chain.start", "data": {"id": i}})
                    ok, why = r.status_code == 202, f"status {r.status_code}"
                except httpx.HTTPError as e:
                    ok, why = False, f"{type(e).__name__}: {e}"
                with self._lock:
                    (self.accepted.add(i) if ok else self.failed.__setitem__(i, why))

    def _run(self, threads: int) -> None:
        with ThreadPoolExecutor(threads) as pool:
            for _ in range(threads):
                pool.submit(self._worker)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the emitter did not finish"


def test_kill_9_of_one_hosts_python_runner_mid_chain_loses_no_event(cluster: Cluster) -> None:
    root, first = cluster.root, 2 * N  # ids of their own, apart from the host-kill test's
    ids = set(range(first, first + N))
    a = cluster.hosts["A"]
    pid = a.runner_pid("python")
    emitter = Emitter(cluster, first=first)
    wait_until(lambda: len([i for i, _ in hits(root, "py") if i in ids]) >= 120, 60, "120 events at the Python hop")
    os.kill(pid, signal.SIGKILL)
    emitter.join(90)
    assert not emitter.failed, f"emits refused: {list(emitter.failed.items())[:5]}"
    wait_until(lambda: ids <= {i for i, _ in hits(root, "rb")}, 90, "every event at the Ruby hop")
    wait_until(lambda: a.runner_pid("python") != pid, 30, "host A's Python runner restarted")
    counts = Counter(i for i, _ in hits(root, "py") if i in ids)
    print(f"\nkill -9 of host A's python runner: {N} events, python hop duplicates "
          f"{sum(c - 1 for c in counts.values())}")
    assert set(counts) == ids


def test_kill_9_of_one_host_mid_chain_loses_no_accepted_event(cluster: Cluster) -> None:
    root, victim = cluster.root, cluster.hosts["C"]
    emitter = Emitter(cluster)
    wait_until(lambda: len([i for i, _ in hits(root, "rb") if i < N]) >= 120, 60, "120 events through the chain")
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait(10)
    emitter.alive = [cluster.hosts["A"], cluster.hosts["B"]]
    killed_at = time.monotonic()
    done_at_kill = {i for i, _ in hits(root, "rb") if i < N}
    emitter.join(90)
    accepted = set(emitter.accepted)
    assert accepted - done_at_kill, "every accepted event was done before the kill: it tested nothing"
    wait_until(lambda: accepted <= {i for i, _ in hits(root, "rb")}, 90,
               "every accepted event at the Ruby hop on the surviving hosts")
    recovered_after = time.monotonic() - killed_at

    report = {}
    for hop in ("js", "py", "rb"):
        counts = Counter(i for i, _ in hits(root, hop) if i < N)
        report[hop] = {"handlings": sum(counts.values()), "distinct": len(counts),
                       "duplicates": sum(c - 1 for c in counts.values()), "missing": len(accepted - set(counts)),
                       "by_host": dict(Counter(tag for i, tag in hits(root, hop) if i < N))}
    out = REPO / "test-artifacts" / "many_hosts_kill.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({
        "test": "kill -9 one of three hosts sharing Redis mid-chain (JS -> Python -> Ruby)", "events": N,
        "accepted": len(accepted), "refused_or_unanswered": len(emitter.failed),
        "ruby_hop_done_at_kill": len(done_at_kill), "seconds_from_kill_to_all_done": round(recovered_after, 1),
        "lease_seconds": 2, "hops": report, "measuredAt": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=2) + "\n")
    print(f"\nmany_hosts_kill.json: {out.read_text()}")
    for hop in report.values():
        assert hop["missing"] == 0, report
    dead = httpx.get(f"{cluster.hosts['A'].url}/__steppe/dlq", headers=AUTH).json()
    assert [d for d in dead if d["event"]["data"].get("id", N) < N] == [], f"dead letters: {dead[:3]}"
    assert os.path.exists(root / "hits-rb.log")
