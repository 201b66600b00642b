"""The invocation recorder: past `rate` new traces a second it records a sample, keeps every invocation
of a trace it records, and always records failures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from steppe.event import NEW_TRACE
from steppe.telemetry.codec import decode
from steppe.telemetry.recorder import InvocationRecorder


@dataclass
class Step:
    name: str
    language: str = "python"


@dataclass
class Ctx:  # the shape of runners.InvocationContext that the recorder reads
    step: Step
    trace_id: str
    flows: list[str] = field(default_factory=list)
    sampled: Any = None


def run(rec: InvocationRecorder, trace: str, step: str, error: Exception | None = None) -> None:
    ctx = Ctx(Step(step), trace)
    inv = rec.begin(ctx, ctx.step, "event", {"trace": trace})
    rec.operation(ctx, "state.set", {"group": "g", "key": trace, "value": 1}, 0.0)
    rec.end(ctx, inv, error)


def test_past_the_rate_a_sample_is_recorded_whole_and_failures_always() -> None:
    rows: list[tuple[Any, ...]] = []
    news: list[tuple[str, Any]] = []
    rec = InvocationRecorder(rows.append, lambda kind, data: news.append((kind, data)), rate=10)
    for n in range(100):
        run(rec, f"t{n}", "First")
    for n in range(100):  # the second hop of each trace follows its trace's decision
        run(rec, f"t{n}", "Second")
    recorded = [decode(r) for r in rows]
    traces = {i["traceId"] for i in recorded}
    assert 10 <= len(traces) <= 20 and rec.skipped == 100 - len(traces)  # the bucket refills as time passes
    assert all({i["step"] for i in recorded if i["traceId"] == t} == {"First", "Second"} for t in traces)
    assert all(i["opCounts"] == {"state.set": 1} for i in recorded)
    assert len([k for k, _ in news if k == "state"]) == 200  # live state news do not depend on the sample
    skipped = next(f"t{n}" for n in range(100) if f"t{n}" not in traces)
    run(rec, skipped, "Third", RuntimeError("boom"))
    failed = decode(rows[-1])
    assert (failed["traceId"], failed["step"], failed["status"]) == (skipped, "Third", "error")
    assert "boom" in failed["error"] and rec.in_flight() == 0 and rec.finished == 201


def test_rate_zero_records_everything() -> None:
    rows: list[tuple[Any, ...]] = []
    rec = InvocationRecorder(rows.append, lambda kind, data: None, rate=0)
    for n in range(1000):
        run(rec, f"t{n}", "S")
    assert len(rows) == 1000 and rec.skipped == 0


def test_past_per_trace_only_failures_are_recorded_and_the_rest_counted() -> None:
    rows: list[tuple[Any, ...]] = []
    counted: list[str] = []
    rec = InvocationRecorder(rows.append, lambda kind, data: None, rate=0, per_trace=10,
                             count_unrecorded=counted.append)
    for n in range(25):
        run(rec, "big", "Hop", RuntimeError("boom") if n == 20 else None)
    run(rec, "small", "Hop")
    recorded = [decode(r) for r in rows]
    assert [i["status"] for i in recorded if i["traceId"] == "big"] == ["ok"] * 10 + ["error"]
    assert counted == ["big"] * 14 and [i["traceId"] for i in recorded].count("small") == 1
    assert rec.in_flight() == 0 and rec.finished == 26 and not rec.running


def test_an_invocation_keeps_its_first_host_calls_and_counts_the_rest() -> None:
    from steppe.telemetry.recorder import MAX_OPS

    rows: list[tuple[Any, ...]] = []
    rec = InvocationRecorder(rows.append, lambda kind, data: None, rate=0)
    ctx = Ctx(Step("Loop"), "t")
    inv = rec.begin(ctx, ctx.step, "event", {})
    for n in range(MAX_OPS + 5):
        rec.operation(ctx, "state.get", {"group": "g", "key": str(n)}, 0.0)
    rec.end(ctx, inv, None)
    (recorded,) = [decode(r) for r in rows]
    assert len(recorded["ops"]) == MAX_OPS and recorded["opsNotRecorded"] == 5


def test_the_traces_remembered_are_bounded_and_a_recent_one_keeps_its_decision() -> None:
    from steppe.telemetry.recorder import GENERATION

    rows: list[tuple[Any, ...]] = []
    rec = InvocationRecorder(rows.append, lambda kind, data: None, rate=0, per_trace=2)
    run(rec, "kept", "A")
    for n in range(3 * GENERATION):
        if n % 1000 == 0:
            run(rec, "kept", "A")  # seen again: stays remembered, so its cap still holds
        run(rec, f"t{n}", "A")
    assert len(rec._traces) + len(rec._older) <= 2 * GENERATION
    assert [decode(r)["traceId"] for r in rows].count("kept") == 2


def test_a_trace_begun_by_an_invocation_passes_its_decision_to_its_emits() -> None:
    """An API request starts its trace: the recorder decides without remembering it, and the decision
    travels with the context (and from there with the events it emits, host/calls.py)."""
    rows: list[tuple[Any, ...]] = []
    rec = InvocationRecorder(rows.append, lambda kind, data: None, rate=2)
    roots = [Ctx(Step("Api"), f"t{n}", sampled=NEW_TRACE) for n in range(50)]
    for ctx in roots:
        rec.end(ctx, rec.begin(ctx, ctx.step, "api", {}), None)
    kept = [c.trace_id for c in roots if c.sampled is True]
    left = [c.trace_id for c in roots if c.sampled is False]
    assert 1 <= len(kept) <= 4 and len(kept) + len(left) == 50  # every root decided, at the rate
    assert not rec._traces.keys() & {hash(t) for t in left}  # nothing kept of the traces left out
    rec._tokens = 1000.0  # however many tokens there are now, a child follows its trace's decision
    for trace in left + kept:
        child = Ctx(Step("Child"), trace, sampled=trace in kept)
        rec.end(child, rec.begin(child, child.step, "event", {}), None)
    recorded = [decode(r) for r in rows]
    assert sorted(i["traceId"] for i in recorded if i["step"] == "Child") == sorted(kept)
    assert sorted(i["traceId"] for i in recorded if i["step"] == "Api") == sorted(kept)
    orphan = Ctx(Step("Child"), "from-outside")  # sampled None: an event emitted by the admin API
    rec.end(orphan, rec.begin(orphan, orphan.step, "event", {}), None)
    assert orphan.sampled is True and decode(rows[-1])["traceId"] == "from-outside"
