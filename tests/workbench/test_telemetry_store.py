"""The telemetry store on a real SQLite file: batches, filters, retention by age and by size."""

from __future__ import annotations

import time
from pathlib import Path

from steppe.telemetry.codec import Row, encode
from steppe.telemetry.invocation import Invocation
from steppe.telemetry.store import TelemetryStore


def invocation(n: int, trace: str, started: float, status: str = "ok", step: str = "S") -> Row:
    return encode(Invocation(f"i{n}", trace, step, "event", "python", ["f"], started, 0.0, duration=2.0,
                             status=status, input={"n": n, "pad": "x" * 400}))


def log(n: int, at: float, trace: str | None = None, level: str = "info") -> dict:
    return {"time": at, "level": level, "msg": f"line {n}", "source": "logger", "traceId": trace, "step": "S"}


async def test_a_trace_summarises_its_invocations(tmp_path: Path) -> None:
    store = TelemetryStore(tmp_path / "t.db")
    now = time.time()
    store.add_invocation(invocation(1, "t1", now, step="Api"))
    store.add_invocation(invocation(2, "t1", now + 0.01, "error", step="Worker"))
    store.add_invocation(invocation(3, "t2", now + 0.02))
    for n in range(5):
        store.add_log(log(n, now + n, "t1" if n % 2 else None, "error" if n == 3 else "info"))
    await store.flush()
    (t1,) = store.traces(status="error")
    assert (t1["traceId"], t1["entry"], t1["invocations"], t1["errors"], t1["steps"]) == (
        "t1", "Api", 2, 1, ["Api", "Worker"])
    assert [t["traceId"] for t in store.traces(step="S")] == ["t2"]
    assert [i["id"] for i in store.invocations(trace_id="t1")] == ["i1", "i2"]
    assert [r["msg"] for r in store.logs(trace_id="t1")] == ["line 1", "line 3"]
    assert [r["msg"] for r in store.logs(level="error")] == ["line 3"]
    assert [r["msg"] for r in store.logs(text="LINE 4")] == ["line 4"]
    page = store.logs(limit=2)
    assert [r["msg"] for r in page] == ["line 3", "line 4"]
    assert [r["msg"] for r in store.logs(limit=2, before=page[0]["id"])] == ["line 1", "line 2"]
    await store.stop()


async def test_retention_by_age_and_by_size(tmp_path: Path) -> None:
    store = TelemetryStore(tmp_path / "t.db", max_age=3600, max_bytes=400_000)
    old = time.time() - 7200
    store.add_log(log(0, old))
    store.add_invocation(invocation(0, "old", old))
    await store.flush()
    assert store.logs() == [] and store.traces() == []  # older than max_age: gone at the first flush
    for n in range(4000):
        store.add_log(log(n, time.time(), f"t{n}"))
        if n % 4 == 0:
            store.add_invocation(invocation(n, f"t{n}", time.time()))
    store._next_prune = 0  # the next flush prunes (it does so every 30 s)
    await store.flush()
    assert store.used_bytes() <= 400_000
    kept = store.logs(limit=100_000)
    assert 0 < len(kept) < 4000 and kept[-1]["msg"] == "line 3999"  # the newest are kept
    await store.stop()
    assert (tmp_path / "t.db").stat().st_size < 1_000_000  # freed pages went back to the disk


async def test_a_backlog_past_its_bound_drops_the_oldest_and_says_so(tmp_path: Path) -> None:
    problems: list[tuple[str, str]] = []
    store = TelemetryStore(tmp_path / "t.db", backlog=10, batch=1000,
                           on_problem=lambda status, reason: problems.append((status, reason)))
    for n in range(15):
        store.add_log(log(n, time.time()))
    assert store.dropped == 5 and problems[-1][0] == "degraded"
    await store.flush()
    assert [r["msg"] for r in store.logs()][0] == "line 5"
    await store.stop()
