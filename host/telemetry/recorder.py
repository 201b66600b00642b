"""Recording every handler invocation: its step, trigger, timing, outcome, and the operations it asked of
the host (state reads and writes, emits, stream writes) with their timing.

The hot path pays for one small object per invocation and one tuple per operation; encoding and writing
happen in the telemetry store's batches.
"""

from __future__ import annotations

import itertools
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# the host calls whose arguments name what they touched, and which ones change state
_ADDRESS = {"state": ("group", "key"), "streams": ("stream", "groupId", "id")}
STATE_WRITES = {"state.set", "state.delete", "state.clear", "state.update"}
STREAM_WRITES = {"streams.set", "streams.delete", "streams.send"}


@dataclass(slots=True)
class Invocation:
    id: str
    trace_id: str
    step: str
    trigger: str
    language: str
    flows: list[str]
    started: float  # epoch seconds
    t0: float  # perf_counter at start
    attempt: int = 1
    topic: str | None = None
    input: Any = None
    duration: float | None = None  # ms, once ended
    status: str = "running"
    error: str | None = None
    stack: str | None = None
    ops: list[tuple[str, float, float, str, Any]] = field(default_factory=list)  # (op, at ms, ms, target, data)

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "traceId": self.trace_id, "step": self.step, "trigger": self.trigger,
                "language": self.language, "start": self.started, "duration": self.duration,
                "status": self.status, "attempt": self.attempt, "topic": self.topic, "error": self.error}

    def as_dict(self) -> dict[str, Any]:
        counts = Counter(op for op, *_ in self.ops)
        return {**self.summary(), "flows": self.flows, "stack": self.stack, "input": self.input,
                "opCounts": dict(counts),
                "ops": [{"op": op, "at": round(at, 3), "ms": round(ms, 3), "target": target, "data": data}
                        for op, at, ms, target, data in self.ops]}


def _target(method: str, params: dict[str, Any]) -> str:
    if method == "emit":
        event = params.get("event")
        return str(event.get("topic")) if isinstance(event, dict) else ""
    names = _ADDRESS.get(method.split(".")[0], ())
    return "/".join(str(params[n]) for n in names if params.get(n) is not None)


class InvocationRecorder:
    """Told by the invoker when invocations start and end, and by the host calls what they did."""

    def __init__(self, sink: Callable[[Invocation], None], publish: Callable[[str, Any], None]) -> None:
        self._sink, self._publish = sink, publish
        # ids unique across restarts without a random draw per invocation: this run's prefix, then a count
        self._prefix = os.urandom(4).hex()
        self._count = itertools.count(1)
        self.running: dict[int, Invocation] = {}  # by id() of the invocation's context object
        self.last_error: dict[str, tuple[float, str]] = {}  # language → (when, what) of its last failure
        self.finished = 0  # invocations ended since the start (the live feed's tick tells pages it moved)
        self.stream_writers: set[tuple[str, str]] = set()  # (step, stream) seen writing: edges of the graph

    def begin(self, ctx: object, step: Any, trigger: str, input: Any, attempt: int = 1,
              topic: str | None = None) -> Invocation:
        inv = Invocation(f"{self._prefix}{next(self._count):x}", ctx.trace_id, step.name, trigger, step.language,  # type: ignore[attr-defined]
                         ctx.flows, time.time(), time.perf_counter(), attempt, topic, input)  # type: ignore[attr-defined]
        self.running[id(ctx)] = inv
        return inv

    def end(self, ctx: object, inv: Invocation, error: BaseException | None) -> None:
        self.running.pop(id(ctx), None)
        inv.duration = round((time.perf_counter() - inv.t0) * 1000, 3)
        if error is None:
            inv.status = "ok"
        else:
            inv.status = "error"
            kind = getattr(error, "type", None) or type(error).__name__
            inv.error = f"{kind}: {getattr(error, 'message', None) or error}"
            inv.stack = getattr(error, "stack", None) or None
            self.last_error[inv.language] = (time.time(), f"{inv.step}: {inv.error}")
        self.finished += 1
        self._sink(inv)

    def operation(self, ctx: object, method: str, params: dict[str, Any], t0: float) -> None:
        """A host call made by a running handler (HandlerCalls reports each one)."""
        inv = self.running.get(id(ctx))
        if inv is None:
            return
        now = time.perf_counter()
        target = _target(method, params)
        event = params.get("event")
        data = (event.get("data") if isinstance(event, dict) else None) if method == "emit" else \
            params.get("value", params.get("data"))
        inv.ops.append((method, (t0 - inv.t0) * 1000, (now - t0) * 1000, target, data))
        if method in STREAM_WRITES:
            self.stream_writers.add((inv.step, str(params.get("stream"))))
        elif method in STATE_WRITES:
            self._publish("state", {"op": method, "group": params.get("group"), "key": params.get("key"),
                                    "step": inv.step})

    def in_flight(self) -> int:
        return len(self.running)

    def running_in(self, trace_id: str) -> list[Invocation]:
        return [i for i in self.running.values() if i.trace_id == trace_id]
