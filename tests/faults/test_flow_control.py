"""FIFO groups, concurrency caps, handler timeouts, SIGTERM drain, idempotent emit, size limits.

Python handlers record what they saw by appending short lines to files under the project root. Every
Python handler of a project runs on the one event loop of the one Python runner, so the order of the
lines is the order in which things happened, and a module-level counter is an exact in-flight count."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from conftest import wait_until, write_project

LOG_HELPER = """
    import os

    def record(name, *words):
        with open(os.path.join(os.environ["STEPPE_PROJECT_ROOT"], name), "a") as f:
            f.write(" ".join(str(w) for w in words) + "\\n")
"""


def lines(root: Path, name: str) -> list[list[str]]:
    path = root / name
    return [x.split() for x in path.read_text().split("\n") if x] if path.exists() else []




def emit(host, topic: str, data, id: str | None = None) -> dict:
    r = httpx.post(f"{host.url}/__steppe/emit", json={"topic": topic, "data": data, **({"id": id} if id else {})})
    assert r.status_code == 202, r.text
    return r.json()


def queue(host) -> dict:
    return host.runners()["queue"]


def dlq(host) -> list[dict]:
    return httpx.get(f"{host.url}/__steppe/dlq").json()


# --- FIFO

FIFO = {
    "steps/record.py": LOG_HELPER,
    "steps/seed_step.py": """
        config = {"type": "api", "name": "Seed", "path": "/seed", "method": "POST", "emits": ["fifo.ev"]}

        async def handler(req, context):
            for seq, group in enumerate(req.body["groups"]):  # one emit after the other: the emit order
                await context.emit({"topic": "fifo.ev", "data": {"group": group, "seq": seq},
                                    "messageGroupId": group})
            return {"status": 200, "body": {"emitted": len(req.body["groups"])}}
    """,
    "steps/ordered_step.py": """
        import asyncio
        import random

        from .record import record

        config = {"type": "event", "name": "Ordered", "subscribes": ["fifo.ev"], "emits": [],
                  "infrastructure": {"queue": {"type": "fifo", "concurrency": 5}}}

        async def handler(input, context):
            record("fifo.log", "S", input["group"], input["seq"])
            await asyncio.sleep(random.uniform(0.005, 0.04))
            record("fifo.log", "E", input["group"], input["seq"])
    """,
}


@pytest.mark.parametrize("bus", ["sqlite", "memory"])
def test_fifo_groups_run_one_at_a_time_in_emit_order(tmp_path, start_host, bus):
    root = write_project(tmp_path, FIFO)
    host = start_host(root, env={"STEPPE_BUS": bus})
    groups = [random.choice(["red", "green", "blue"]) for _ in range(50)]
    r = httpx.post(f"{host.url}/seed", json={"groups": groups}, timeout=30)
    assert r.status_code == 200, r.text
    wait_until(lambda: len(lines(root, "fifo.log")) >= 100, 30, "50 handled events")
    time.sleep(0.3)
    log = lines(root, "fifo.log")
    assert len(log) == 100, "an event was handled more than once"

    open_by_group: dict[str, int] = {}
    seen: dict[str, list[int]] = {}
    most = 0
    for kind, group, seq in log:
        if kind == "S":
            assert group not in open_by_group, f"{group}: {seq} started while {open_by_group.get(group)} ran"
            open_by_group[group] = int(seq)
            seen.setdefault(group, []).append(int(seq))
            most = max(most, len(open_by_group))
        else:
            assert open_by_group.pop(group) == int(seq)
    for group in set(groups):
        assert seen[group] == [i for i, g in enumerate(groups) if g == group], f"{group} out of order or lossy"
    assert most >= 2, "the groups never ran side by side: concurrency was not used"


FIFO_FLAKY = {**FIFO, "steps/ordered_step.py": """
    import asyncio
    import random

    from .record import record

    config = {"type": "event", "name": "Ordered", "subscribes": ["fifo.ev"], "emits": [],
              "infrastructure": {"queue": {"type": "fifo", "concurrency": 5, "maxRetries": 3}}}
    failed = set()

    async def handler(input, context):
        record("fifo.log", "S", input["group"], input["seq"])
        await asyncio.sleep(random.uniform(0.005, 0.02))
        if input["seq"] % 7 == 3 and input["seq"] not in failed:  # fail once: the retry must keep its place
            failed.add(input["seq"])
            record("fifo.log", "F", input["group"], input["seq"])
            raise RuntimeError("not this time")
        record("fifo.log", "E", input["group"], input["seq"])
"""}


@pytest.mark.parametrize("bus", ["sqlite", "memory"])
def test_fifo_group_waits_for_the_retry_of_its_failed_head(tmp_path, start_host, bus):
    root = write_project(tmp_path, FIFO_FLAKY)
    host = start_host(root, env={"STEPPE_BUS": bus, "STEPPE_RETRY_BASE": "0.1"})
    groups = [random.choice(["red", "green", "blue"]) for _ in range(30)]
    flaky = [i for i in range(30) if i % 7 == 3]
    assert httpx.post(f"{host.url}/seed", json={"groups": groups}, timeout=30).status_code == 200
    wait_until(lambda: sum(1 for x in lines(root, "fifo.log") if x[0] == "E") >= 30, 30, "30 handled events")
    time.sleep(0.3)
    log = lines(root, "fifo.log")
    running: dict[str, int] = {}
    starts: dict[str, list[int]] = {}
    for kind, group, seq in log:
        if kind == "S":
            assert group not in running, f"{group}: {seq} started while {running.get(group)} ran or awaited retry"
            running[group] = int(seq)
            starts.setdefault(group, []).append(int(seq))
        else:
            assert running.pop(group) == int(seq)
    for group in set(groups):
        expected = [j for i, g in enumerate(groups) if g == group for j in ([i, i] if i in flaky else [i])]
        assert starts[group] == expected, f"{group}: the failed head lost its place or an event was lost"
    assert sorted(int(seq) for kind, _, seq in log if kind == "E") == list(range(30))
    assert dlq(host) == []


# --- concurrency caps

CAPS = {
    "steps/record.py": LOG_HELPER,
    "steps/counter.py": """
        import sys
        import types

        # one object shared by every step module of this runner
        running = sys.modules.setdefault("_faults_running", types.SimpleNamespace(total=0, by={}))
    """,
    "steps/seed_caps_step.py": """
        config = {"type": "api", "name": "SeedCaps", "path": "/seed-caps", "method": "POST",
                  "emits": ["cap.a", "cap.b"]}

        async def handler(req, context):
            for topic in ("cap.a", "cap.b"):
                for n in range(req.body["n"]):
                    await context.emit({"topic": topic, "data": {"n": n}})
            return {"status": 200, "body": {}}
    """,
    "steps/capped_a_step.py": """
        import asyncio

        from .counter import running
        from .record import record

        config = {"type": "event", "name": "CappedA", "subscribes": ["cap.a"], "emits": [],
                  "infrastructure": {"queue": {"concurrency": 3}}}

        async def handler(input, context):
            running.total += 1
            running.by["a"] = running.by.get("a", 0) + 1
            record("caps.log", "a", running.by["a"], running.total, input["n"])
            try:
                await asyncio.sleep(0.2)
            finally:
                running.total -= 1
                running.by["a"] -= 1
    """,
    "steps/capped_b_step.py": """
        import asyncio

        from .counter import running
        from .record import record

        config = {"type": "event", "name": "CappedB", "subscribes": ["cap.b"], "emits": [],
                  "infrastructure": {"queue": {"concurrency": 3}}}

        async def handler(input, context):
            running.total += 1
            running.by["b"] = running.by.get("b", 0) + 1
            record("caps.log", "b", running.by["b"], running.total, input["n"])
            try:
                await asyncio.sleep(0.2)
            finally:
                running.total -= 1
                running.by["b"] -= 1
    """,
}


def test_step_concurrency_and_runner_cap_are_never_exceeded(tmp_path, start_host):
    root = write_project(tmp_path, CAPS)
    host = start_host(root, env={"STEPPE_RUNNER_CONCURRENCY": "4"})
    # all of A first, in one quick burst: only its own cap can hold A back, and B piles up behind the runner's
    assert httpx.post(f"{host.url}/seed-caps", json={"n": 15}).status_code == 200
    wait_until(lambda: len(lines(root, "caps.log")) >= 30, 30, "30 handled events")
    time.sleep(0.3)
    log = lines(root, "caps.log")
    assert sorted((s, int(n)) for s, _, _, n in log) == sorted((s, n) for s in "ab" for n in range(15))
    per_step = {s: max(int(c) for st, c, _, _ in log if st == s) for s in "ab"}
    total = max(int(t) for _, _, t, _ in log)
    assert per_step["a"] <= 3 and per_step["b"] <= 3, per_step
    assert total <= 4, f"{total} deliveries ran at once on one runner, runner_concurrency is 4"
    assert total == 4 and max(per_step.values()) == 3, (per_step, total)  # the caps were reached, not avoided


# --- handler timeouts

TIMEOUTS = {
    "steps/record.py": LOG_HELPER,
    "steps/sleeper_step.py": """
        import asyncio

        from .record import record

        config = {"type": "event", "name": "Sleeper", "subscribes": ["sleep.forever"], "emits": [],
                  "infrastructure": {"handler": {"timeout": 1}, "queue": {"maxRetries": 3}}}

        async def handler(input, context):
            record("sleeper.log", "start")
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                record("sleeper.log", "cancelled")
                raise
    """,
    "steps/busy_step.py": """
        import os
        import time

        from .record import record

        config = {"type": "event", "name": "Busy", "subscribes": ["busy.once"], "emits": [],
                  "infrastructure": {"handler": {"timeout": 1}, "queue": {"maxRetries": 3}}}

        async def handler(input, context):  # async, yet never yields: the runner cannot even read a cancel
            first = not os.path.exists(os.path.join(os.environ["STEPPE_PROJECT_ROOT"], "busy.log"))
            record("busy.log", "start", os.getpid())
            if first:
                until = time.time() + 20
                while time.time() < until:
                    pass
            record("busy.log", "ok", os.getpid())
    """,
    "steps/bystander_step.py": """
        import asyncio
        import os

        from .record import record

        config = {"type": "event", "name": "Bystander", "subscribes": ["bystander"], "emits": []}

        async def handler(input, context):
            record("bystander.log", "start", os.getpid())
            await asyncio.sleep(2.5)
            record("bystander.log", "end", os.getpid())
    """,
}


def test_timed_out_handler_is_cancelled_retried_then_dead_lettered(tmp_path, start_host):
    root = write_project(tmp_path, TIMEOUTS)
    host = start_host(root, env={"STEPPE_RETRY_BASE": "0.1"})
    pid = host.runner_pid("python")
    emit(host, "sleep.forever", {})
    [letter] = wait_until(lambda: dlq(host), 20, "a dead letter")
    wait_until(lambda: len(lines(root, "sleeper.log")) >= 6, 5, "the last cancel to reach the handler")
    time.sleep(0.3)
    assert lines(root, "sleeper.log") == [["start"], ["cancelled"]] * 3
    assert letter["step"] == "Sleeper" and letter["attempts"] == 3
    assert letter["error"] == "InvocationTimeout: handler did not finish within 1.0s"
    assert host.runner_pid("python") == pid, "a runner that honoured the cancel was restarted"


def test_runner_ignoring_a_cancel_is_killed_and_its_in_flight_deliveries_retried(tmp_path, start_host):
    root = write_project(tmp_path, TIMEOUTS)
    host = start_host(root, env={"STEPPE_RETRY_BASE": "0.1", "STEPPE_CANCEL_GRACE": "0.5"})
    first = host.runner_pid("python")
    emit(host, "bystander", {})
    wait_until(lambda: lines(root, "bystander.log"), 10, "the bystander to start")
    emit(host, "busy.once", {})
    wait_until(lambda: ["ok"] == [w for w, _ in lines(root, "busy.log")][-1:], 30, "the busy delivery retried")
    wait_until(lambda: [w for w, _ in lines(root, "bystander.log")][-1:] == ["end"], 15, "the bystander retried")
    second = host.runner_pid("python")
    assert second != first
    host.wait_log("python runner ignored a cancel for 0.5s; restarting it")
    host.wait_log(f"python runner (pid {first}) died: runner was killed by signal SIGKILL")
    assert lines(root, "busy.log") == [["start", str(first)], ["start", str(second)], ["ok", str(second)]]
    # the bystander was cut off with the runner (never ended there) and ran again on the new one
    by = lines(root, "bystander.log")
    assert by[0] == ["start", str(first)] and ["end", str(first)] not in by
    assert by[-2:] == [["start", str(second)], ["end", str(second)]]
    assert dlq(host) == []
    wait_until(lambda: queue(host) == {"ready": 0, "leased": 0, "dead": 0}, 5, "an empty queue")


# --- SIGTERM drain

SLOW = {
    "steps/record.py": LOG_HELPER,
    "steps/slow_step.py": """
        import asyncio
        import os

        from .record import record

        config = {"type": "event", "name": "Slow", "subscribes": ["slow"], "emits": []}

        async def handler(input, context):
            record("slow.log", "start", os.getpid())
            await asyncio.sleep(3)
            record("slow.log", "end", os.getpid())
    """,
}


def test_sigterm_lets_the_running_handler_finish_then_exits_0(tmp_path, start_host):
    root = write_project(tmp_path, SLOW)
    host = start_host(root, env={"STEPPE_BUS": "sqlite"})
    emit(host, "slow", {})
    wait_until(lambda: lines(root, "slow.log"), 10, "the handler to start")
    host.proc.send_signal(signal.SIGTERM)
    assert host.proc.wait(20) == 0
    assert [w for w, _ in lines(root, "slow.log")] == ["start", "end"], "exited before the handler finished"
    assert "still running after" not in host.logs()

    again = start_host(root, env={"STEPPE_BUS": "sqlite"})
    time.sleep(1.5)  # more than the worker's poll: a journalled delivery would have started
    assert [w for w, _ in lines(root, "slow.log")] == ["start", "end"], "the finished delivery ran again"
    assert queue(again) == {"ready": 0, "leased": 0, "dead": 0}


def test_sigterm_past_the_drain_grace_leaves_the_delivery_in_the_journal(tmp_path, start_host):
    root = write_project(tmp_path, SLOW)
    host = start_host(root, env={"STEPPE_BUS": "sqlite", "STEPPE_DRAIN_GRACE": "0.5"})
    emit(host, "slow", {})
    wait_until(lambda: lines(root, "slow.log"), 10, "the handler to start")
    host.proc.send_signal(signal.SIGTERM)
    assert host.proc.wait(20) == 0
    assert "1 delivery(ies) still running after 0.5s; they will run again after the next start" in host.logs()
    assert [w for w, _ in lines(root, "slow.log")] == ["start"]

    again = start_host(root, env={"STEPPE_BUS": "sqlite"})
    again.wait_log("1 delivery(ies) interrupted by the last stop will run again")
    wait_until(lambda: [w for w, _ in lines(root, "slow.log")] == ["start", "start", "end"], 15,
               "the journalled delivery to run after the restart")
    wait_until(lambda: queue(again) == {"ready": 0, "leased": 0, "dead": 0}, 5, "an empty queue")


# --- idempotent emit

ONCE = {
    "steps/record.py": LOG_HELPER,
    "steps/dup_step.py": """
        config = {"type": "api", "name": "Dup", "path": "/dup", "method": "POST", "emits": ["once.ev"]}

        async def handler(req, context):
            for _ in range(req.body["times"]):
                await context.emit({"topic": "once.ev", "data": {"k": req.body["k"]}, "id": req.body.get("id")})
            return {"status": 200, "body": {"ok": True}}
    """,
    "steps/once_step.py": """
        from .record import record

        config = {"type": "event", "name": "Once", "subscribes": ["once.ev"], "emits": []}

        async def handler(input, context):
            record("once.log", input["k"])
    """,
}


def cli_emit(host, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "steppe.cli", "emit", "--port", str(host.port), "--root",
                          str(host.root), "--topic", "once.ev", *args], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, (out.stdout, out.stderr)
    return json.loads(out.stdout)


def test_emit_with_an_id_is_handled_once(tmp_path, start_host):
    root = write_project(tmp_path, ONCE)
    env = {"STEPPE_BUS": "sqlite"}
    host = start_host(root, env=env)
    for _ in range(2):  # twice in one handler, twice over: four emits with one id
        assert httpx.post(f"{host.url}/dup", json={"id": "order-1", "k": "a", "times": 2}).status_code == 200
    first = cli_emit(host, "--id", "cli-1", "--data", '{"k": "b"}')
    second = cli_emit(host, "--id", "cli-1", "--data", '{"k": "b"}')
    assert first["duplicate"] is False and first["deliveries"] == 1
    assert second["duplicate"] is True and second["deliveries"] == 0
    # without an id, equal data is two events
    assert httpx.post(f"{host.url}/dup", json={"k": "c", "times": 2}).status_code == 200
    wait_until(lambda: len(lines(root, "once.log")) >= 4, 10, "four handled events")
    time.sleep(1.0)
    assert Counter(k for [k] in lines(root, "once.log")) == {"a": 1, "b": 1, "c": 2}
    assert "was already accepted; this emit is ignored" in host.logs()

    assert host.stop() == 0  # the ids outlive the host
    again = start_host(root, env=env)
    assert cli_emit(again, "--id", "cli-1", "--data", '{"k": "b"}')["duplicate"] is True
    assert httpx.post(f"{again.url}/dup", json={"id": "order-1", "k": "a", "times": 1}).status_code == 200
    time.sleep(1.0)
    assert Counter(k for [k] in lines(root, "once.log")) == {"a": 1, "b": 1, "c": 2}


def test_an_emit_id_is_forgotten_after_the_dedupe_window(tmp_path, start_host):
    root = write_project(tmp_path, ONCE)
    host = start_host(root, env={"STEPPE_BUS": "sqlite", "STEPPE_DEDUPE_WINDOW": "1"})
    assert emit(host, "once.ev", {"k": "a"}, id="w-1")["duplicate"] is False
    assert emit(host, "once.ev", {"k": "a"}, id="w-1")["duplicate"] is True
    time.sleep(1.5)
    assert emit(host, "once.ev", {"k": "a"}, id="w-1")["duplicate"] is False
    wait_until(lambda: len(lines(root, "once.log")) >= 2, 10, "two handled events")
    time.sleep(0.5)
    assert lines(root, "once.log") == [["a"], ["a"]]


@pytest.mark.parametrize("bus", ["sqlite", "memory"])
def test_an_emit_id_nobody_subscribes_to_is_kept_and_replayed_once(tmp_path, start_host, bus):
    # seen: the same id emitted twice to a topic with no subscriber answered duplicate: false both times,
    # was kept twice as unrouted, and a replay once a subscriber existed delivered it twice
    root = write_project(tmp_path, ONCE)
    host = start_host(root, env={"STEPPE_BUS": bus})
    first = emit(host, "nobody.listens", {"k": "u"}, id="u-1")
    second = emit(host, "nobody.listens", {"k": "u"}, id="u-1")
    assert (first["duplicate"], first["deliveries"]) == (False, 0)
    assert (second["duplicate"], second["deliveries"]) == (True, 0)
    unrouted = host.admin_get("/__steppe/events", timeout=5).json()["unrouted"]
    assert [e["id"] for e in unrouted if e["id"] == "u-1"] == ["u-1"], unrouted
    # the id stays taken once a subscriber exists: the same emit now is still a duplicate
    (root / "steps" / "listen_step.py").write_text(
        'from .record import record\n'
        'config = {"type": "event", "name": "Listen", "subscribes": ["nobody.listens"], "emits": []}\n'
        'async def handler(input, context):\n    record("listen.log", input["k"])\n')
    wait_until(lambda: any(s["name"] == "Listen" for s in host.admin_get("/__steppe/steps").json()["steps"]), 15,
               "the new subscriber loaded")
    assert emit(host, "nobody.listens", {"k": "u"}, id="u-1")["duplicate"] is True
    replay = host.admin_post("/__steppe/events/replay", json={"all": True}, timeout=5).json()
    assert replay == {"replayed": 1, "deliveries": 1}
    wait_until(lambda: lines(root, "listen.log"), 10, "the replayed event handled")
    time.sleep(0.5)
    assert lines(root, "listen.log") == [["u"]]


# --- size limits

LIMITS = {
    "steps/record.py": LOG_HELPER,
    "steps/echo_step.py": """
        config = {"type": "api", "name": "Echo", "path": "/echo", "method": "POST", "emits": []}

        async def handler(req, context):
            return {"status": 200, "body": {"bytes": len(req.rawBody)}}
    """,
    "steps/big_emit_step.py": """
        config = {"type": "api", "name": "BigEmit", "path": "/big-emit", "method": "POST", "emits": ["big.ev"]}

        async def handler(req, context):
            try:
                await context.emit({"topic": "big.ev", "data": {"blob": "x" * req.body["size"]}})
            except Exception as e:
                return {"status": 200, "body": {"refused": type(e).__name__, "message": str(e)}}
            return {"status": 200, "body": {"refused": None}}
    """,
    "steps/big_emit_js.step.js": """
        export const config = { type: 'api', name: 'BigEmitJs', path: '/big-emit-js', method: 'POST',
                                emits: ['big.ev'] }
        export const handler = async (req, { emit }) => {
          await emit({ topic: 'big.ev', data: { blob: 'x'.repeat(req.body.size) } })
          return { status: 200, body: { refused: null } }
        }
    """,
    "steps/big_step.py": """
        from .record import record

        config = {"type": "event", "name": "Big", "subscribes": ["big.ev"], "emits": []}

        async def handler(input, context):
            record("big.log", len(input["blob"]))
    """,
}


def test_oversized_api_body_gets_413(tmp_path, start_host):
    root = write_project(tmp_path, LIMITS)
    host = start_host(root, env={"STEPPE_MAX_BODY": "1000"})
    fits = json.dumps({"s": "x" * 980})
    assert len(fits) <= 1000
    assert httpx.post(f"{host.url}/echo", content=fits, headers={"content-type": "application/json"}).json() == {
        "bytes": len(fits)}
    r = httpx.post(f"{host.url}/echo", json={"s": "x" * 1000})
    assert r.status_code == 413 and r.json() == {"error": "Payload Too Large", "limit": 1000,
                                                 "traceId": r.headers["x-trace-id"]}

    def chunks():  # no content-length: the host must count as it reads
        for _ in range(10):
            yield b"x" * 200

    r = httpx.post(f"{host.url}/echo", content=chunks(), headers={"content-type": "text/plain"})
    assert r.status_code == 413 and r.json()["limit"] == 1000
    assert httpx.post(f"{host.url}/echo", content=b"y" * 10).json() == {"bytes": 10}  # still serving


def test_oversized_emit_payload_is_refused_to_the_emitter(tmp_path, start_host):
    root = write_project(tmp_path, LIMITS)
    host = start_host(root, env={"STEPPE_MAX_EVENT": "1000"})
    ok = httpx.post(f"{host.url}/big-emit", json={"size": 900}).json()
    assert ok == {"refused": None}
    refused = httpx.post(f"{host.url}/big-emit", json={"size": 2000}).json()
    assert refused["refused"] == "PayloadTooLarge"
    assert "over the 1000-byte limit" in refused["message"] and "max_event" in refused["message"]
    uncaught = httpx.post(f"{host.url}/big-emit-js", json={"size": 2000})
    assert uncaught.status_code == 500 and uncaught.json()["type"] == "PayloadTooLarge", uncaught.text
    r = httpx.post(f"{host.url}/__steppe/emit", json={"topic": "big.ev", "data": {"blob": "x" * 2000}})
    assert r.status_code == 413 and r.json()["limit"] == 1000
    wait_until(lambda: lines(root, "big.log"), 10, "the event that fits")
    time.sleep(0.5)
    assert lines(root, "big.log") == [["900"]]  # nothing oversized got through
