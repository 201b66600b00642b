"""One handler invocation as the recorder follows it, from its start to its end."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


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
    unrecorded_ops: int = 0  # host calls past the recorder's MAX_OPS: counted, not kept

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "traceId": self.trace_id, "step": self.step, "trigger": self.trigger,
                "language": self.language, "start": self.started, "duration": self.duration,
                "status": self.status, "attempt": self.attempt, "topic": self.topic, "error": self.error}

    def as_dict(self) -> dict[str, Any]:
        counts = Counter(op for op, *_ in self.ops)
        return {**self.summary(), "flows": self.flows, "stack": self.stack, "input": self.input,
                "opCounts": dict(counts), "opsNotRecorded": self.unrecorded_ops,
                "ops": [{"op": op, "at": round(at, 3), "ms": round(ms, 3), "target": target, "data": data}
                        for op, at, ms, target, data in self.ops]}
