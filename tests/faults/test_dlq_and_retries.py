"""Retries with jittered backoff, the dead-letter store and its CLI, schema rejections, delaySeconds.

Handlers record what happened to them (one appended line per attempt, with its wall-clock time) in files
under the project root, so every check is made from what the handlers saw."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from conftest import wait_until, write_project

BASE = 0.2  # STEPPE_RETRY_BASE
CAP = 30.0  # STEPPE_RETRY_CAP
SLACK = 0.3  # seconds between a retry falling due and its handler writing its line (a few ms when idle)

PROJECT = {
    "steps/always_fails_step.py": """
        import os
        import time

        config = {"type": "event", "name": "AlwaysFails", "subscribes": ["job.run"], "emits": [],
                  "infrastructure": {"queue": {"maxRetries": 4}}}
        ROOT = os.environ["STEPPE_PROJECT_ROOT"]

        async def handler(input, context):
            with open(os.path.join(ROOT, "attempts.log"), "a") as f:
                f.write(f"{time.time()!r} {input['n']}\\n")
            if os.path.exists(os.path.join(ROOT, "fixed.flag")):
                with open(os.path.join(ROOT, "done.log"), "a") as f:
                    f.write(f"{input['n']}\\n")
                return
            raise RuntimeError(f"boom on {input['n']}")
    """,
    "steps/many_retries_step.py": """
        import os
        import time

        config = {"type": "event", "name": "ManyRetries", "subscribes": ["job.many"], "emits": [],
                  "infrastructure": {"queue": {"maxRetries": 25}}}

        async def handler(input, context):
            with open(os.path.join(os.environ["STEPPE_PROJECT_ROOT"], "many.log"), "a") as f:
                f.write(f"{time.time()!r}\\n")
            raise RuntimeError("again")
    """,
    "steps/also_fails.step.js": """
        export const config = { type: 'event', name: 'AlsoFails', subscribes: ['job.other'], emits: [],
                                infrastructure: { queue: { maxRetries: 1 } } }
        export const handler = async (input) => { throw new Error(`js boom ${input.n}`) }
    """,
    "steps/strict_step.py": """
        import os

        config = {"type": "event", "name": "Strict", "subscribes": ["strict.in"], "emits": [],
                  "input": {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}}

        async def handler(input, context):
            with open(os.path.join(os.environ["STEPPE_PROJECT_ROOT"], "strict.log"), "a") as f:
                f.write(f"{input['n']}\\n")
    """,
    "steps/later_step.py": """
        import os
        import time

        config = {"type": "event", "name": "Later", "subscribes": ["later.in"], "emits": [],
                  "infrastructure": {"queue": {"delaySeconds": 1.5}}}

        async def handler(input, context):
            with open(os.path.join(os.environ["STEPPE_PROJECT_ROOT"], "later.log"), "a") as f:
                f.write(f"{time.time()!r}\\n")
    """,
}

ENV = {"STEPPE_BUS": "sqlite", "STEPPE_RETRY_BASE": str(BASE), "STEPPE_RETRY_CAP": str(CAP)}


def lines(root: Path, name: str) -> list[str]:
    path = root / name
    return [x for x in path.read_text().split("\n") if x] if path.exists() else []




def emit(host, topic: str, data) -> dict:
    r = httpx.post(f"{host.url}/__steppe/emit", json={"topic": topic, "data": data})
    assert r.status_code == 202, r.text
    return r.json()


def dlq(host, step: str | None = None) -> list[dict]:
    return httpx.get(f"{host.url}/__steppe/dlq", params={"step": step} if step else None).json()


def cli(host, *args: str) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "steppe.cli", "dlq", *args, "--root", str(host.root),
                          "--port", str(host.port)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, (out.stdout, out.stderr)
    return out


def test_exhausted_handler_is_dead_lettered_after_max_retries_with_backoff_and_replays(tmp_path, start_host):
    root = write_project(tmp_path, PROJECT)
    host = start_host(root, env=ENV)
    sent = emit(host, "job.run", {"n": 1})
    wait_until(lambda: dlq(host), 20, "a dead letter")
    time.sleep(1.0)  # nothing may run after the delivery was buried
    attempts = [float(x.split()[0]) for x in lines(root, "attempts.log")]
    assert len(attempts) == 4, lines(root, "attempts.log")
    print("gaps between attempts:", [round(b - a, 3) for a, b in zip(attempts, attempts[1:], strict=False)])
    for n in range(1, 4):  # the wait before retry n is uniform in [0, min(cap, base * 2^(n-1))]
        gap, bound = attempts[n] - attempts[n - 1], min(CAP, BASE * 2 ** (n - 1))
        assert 0 <= gap <= bound + SLACK, f"gap before attempt {n + 1}: {gap:.3f}s, bound {bound}s (+{SLACK}s)"

    [letter] = dlq(host)
    assert letter["step"] == "AlwaysFails" and letter["attempts"] == 4
    assert letter["error"] == "RuntimeError: boom on 1"
    assert "boom on" in letter["stack"] and "always_fails_step.py" in letter["stack"]
    assert letter["event"]["id"] == sent["id"] and letter["event"]["topic"] == "job.run"
    assert letter["event"]["data"] == {"n": 1} and letter["event"]["traceId"] == sent["traceId"]
    assert letter["firstAt"] <= attempts[0] + 0.01 and letter["failedAt"] >= attempts[-1] - 0.01
    assert host.wait_log("moved to the dead-letter store after 4 attempt(s): RuntimeError: boom on 1")

    listed = cli(host, "list").stdout
    row = next(x for x in listed.splitlines() if x.strip().startswith(str(letter["id"])))
    assert "AlwaysFails" in row and "job.run" in row and "attempts=4" in row and "RuntimeError: boom on 1" in row
    assert json.loads(cli(host, "list", "--json").stdout) == [letter]
    assert json.loads(cli(host, "show", str(letter["id"])).stdout) == letter

    (root / "fixed.flag").touch()
    replayed = json.loads(cli(host, "replay", str(letter["id"])).stdout)
    assert replayed == {"replayed": 1, "ids": [letter["id"]]}
    wait_until(lambda: lines(root, "done.log") == ["1"], 10, "the replayed delivery to succeed")
    assert len(lines(root, "attempts.log")) == 5
    assert dlq(host) == []
    assert "the dead-letter store is empty" in cli(host, "list").stdout
    wait_until(lambda: host.runners()["queue"] == {"ready": 0, "leased": 0, "dead": 0}, 5, "an empty queue")


def test_every_retry_runs_within_its_backoff_bound(tmp_path, start_host):
    """24 retries of one delivery, each due at most 0.1 s after the failure (base 0.02, cap 0.1): none may
    wait for the worker's next poll instead of its own wake-up."""
    root = write_project(tmp_path, PROJECT)
    base, cap = 0.02, 0.1
    host = start_host(root, env={**ENV, "STEPPE_RETRY_BASE": str(base), "STEPPE_RETRY_CAP": str(cap)})
    emit(host, "job.many", {})
    wait_until(lambda: dlq(host), 30, "a dead letter")
    times = [float(x) for x in lines(root, "many.log")]
    assert len(times) == 25
    gaps = [round(b - a, 3) for a, b in zip(times, times[1:], strict=False)]
    late = [(n + 1, gap) for n, gap in enumerate(gaps) if gap > min(cap, base * 2 ** n) + SLACK]
    assert not late, f"retries that ran late (retry number, gap in s): {late}; all gaps: {gaps}"


def test_drop_by_step_by_id_and_all(tmp_path, start_host):
    root = write_project(tmp_path, PROJECT)
    host = start_host(root, env={**ENV, "STEPPE_RETRY_BASE": "0.02"})
    for n in (1, 2):
        emit(host, "job.other", {"n": n})
    emit(host, "job.run", {"n": 3})
    emit(host, "job.run", {"n": 4})
    wait_until(lambda: len(dlq(host)) == 4, 20, "four dead letters")
    other = dlq(host, "AlsoFails")
    assert sorted(d["error"] for d in other) == ["Error: js boom 1", "Error: js boom 2"]
    assert all(d["attempts"] == 1 for d in other)  # maxRetries 1: one attempt in all
    assert {d["step"] for d in json.loads(cli(host, "list", "--step", "AlsoFails", "--json").stdout)} == {"AlsoFails"}

    dropped = json.loads(cli(host, "drop", "--step", "AlsoFails").stdout)
    assert dropped["dropped"] == 2 and sorted(dropped["ids"]) == sorted(d["id"] for d in other)
    left = dlq(host)
    assert [d["step"] for d in left] == ["AlwaysFails", "AlwaysFails"]
    assert json.loads(cli(host, "drop", str(left[0]["id"])).stdout)["dropped"] == 1
    assert [d["id"] for d in dlq(host)] == [left[1]["id"]]
    assert json.loads(cli(host, "drop", "--all").stdout)["dropped"] == 1
    assert dlq(host) == []
    time.sleep(0.5)
    assert len(lines(root, "attempts.log")) == 8  # dropping does not deliver anything


def test_input_failing_the_schema_is_dead_lettered_at_once_with_the_reason(tmp_path, start_host):
    root = write_project(tmp_path, PROJECT)
    host = start_host(root, env=ENV)
    emit(host, "strict.in", {"n": "not a number"})
    emit(host, "strict.in", {"n": 7})
    [letter] = wait_until(lambda: dlq(host), 10, "a dead letter")
    wait_until(lambda: lines(root, "strict.log"), 10, "the valid event to be handled")
    time.sleep(0.5)
    assert letter["step"] == "Strict" and letter["attempts"] == 1
    assert letter["error"].startswith("rejected: event data does not match the step's input schema")
    assert "/n" in letter["error"] and "expected an integer, got a string ('not a number')" in letter["error"]
    assert lines(root, "strict.log") == ["7"]  # the handler never saw the bad one
    shown = json.loads(cli(host, "show", str(letter["id"])).stdout)
    assert shown["event"]["data"] == {"n": "not a number"}


def test_delay_seconds_holds_the_first_delivery(tmp_path, start_host):
    root = write_project(tmp_path, PROJECT)
    host = start_host(root, env=ENV)
    before = time.time()
    emit(host, "later.in", {})
    after = time.time()
    time.sleep(1.0)
    assert lines(root, "later.log") == [], "delivered before its delaySeconds"
    [handled] = [float(x) for x in wait_until(lambda: lines(root, "later.log"), 10, "the delayed delivery")]
    assert handled - before >= 1.5, f"handled {handled - before:.3f}s after the emit, delaySeconds is 1.5"
    assert handled - after < 10
