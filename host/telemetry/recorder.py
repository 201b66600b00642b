"""Recording every handler invocation: its step, trigger, timing, outcome, and the operations it asked of
the host (state reads and writes, emits, stream writes) with their timing.

The hot path pays for one small object per invocation and one tuple per operation; the ended invocation
becomes the row the telemetry store writes in its next batch.
"""

from __future__ import annotations

import itertools
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from .codec import encode
from .invocation import Invocation

# the host calls whose arguments name what they touched, and which ones change state
_ADDRESS = {"state": ("group", "key"), "streams": ("stream", "groupId", "id")}
STATE_WRITES = {"state.set", "state.delete", "state.clear", "state.update"}
STREAM_WRITES = {"streams.set", "streams.delete", "streams.send"}


def _target(method: str, params: dict[str, Any]) -> str:
    if method == "emit":
        event = params.get("event")
        return str(event.get("topic")) if isinstance(event, dict) else ""
    names = _ADDRESS.get(method.split(".")[0], ())
    return "/".join(str(params[n]) for n in names if params.get(n) is not None)


class InvocationRecorder:
    """Told by the invoker when invocations start and end, and by the host calls what they did.

    Every trace is recorded in full up to `rate` new traces a second; past it (a load test, a flood) a
    new trace is recorded only when the token bucket allows, so recording stays a small, bounded cost.
    A failed invocation is always recorded. The decision is made once per trace and kept, so a recorded
    trace has all of its invocations.
    """

    def __init__(self, sink: Callable[[tuple[Any, ...]], None], publish: Callable[[str, Any], None],
                 rate: float = 200.0) -> None:
        self._sink, self._publish = sink, publish
        # ids unique across restarts without a random draw per invocation: this run's prefix, then a count
        self._prefix = os.urandom(4).hex()
        self._count = itertools.count(1)
        self.running: dict[int, Invocation] = {}  # recorded ones, by id() of the invocation's context object
        self.last_error: dict[str, tuple[float, str]] = {}  # language → (when, what) of its last failure
        self.finished = 0  # invocations ended since the start (the live feed's tick tells pages it moved)
        self.busy = 0  # invocations running now, recorded or not
        self.skipped = 0  # traces not recorded because new ones came faster than `rate`
        self.stream_writers: set[tuple[str, str]] = set()  # (step, stream) seen writing: edges of the graph
        self._rate = rate  # 0: record everything
        self._tokens, self._refilled = rate, time.monotonic()
        # hash of the trace id → recorded? for the newest 20,000 traces: ints, not the ids, to keep it small;
        # an OrderedDict forgets its oldest in O(1) (a dict's first key is found by skipping every deleted slot)
        self._decided: OrderedDict[int, bool] = OrderedDict()
        self.recording = True  # False: the Workbench's store is off (`telemetry = false`), only the hooks below run
        self.tracing: Any = None  # the OpenTelemetry spans (telemetry/tracing.py), when a collector is configured
        self.metrics: Any = None  # the Prometheus counts (telemetry/metrics.py), unless `metrics = false`

    def _recorded(self, trace_id: str) -> bool:
        key = hash(trace_id)
        keep = self._decided.get(key)
        if keep is None:
            now = time.monotonic()
            self._tokens = min(self._rate, self._tokens + (now - self._refilled) * self._rate)
            self._refilled = now
            keep = self._tokens >= 1
            if keep:
                self._tokens -= 1
            else:
                self.skipped += 1
            self._decided[key] = keep
            if len(self._decided) > 20_000:
                self._decided.popitem(last=False)
        return keep

    def begin(self, ctx: Any, step: Any, trigger: str, input: Any, attempt: int = 1,
              topic: str | None = None) -> Any:
        """What `end` needs: the Invocation followed, or for a trace not recorded, what a failure needs."""
        self.busy += 1
        if self.tracing is not None:
            self.tracing.start(ctx, step, trigger, attempt, topic)
        if not self.recording or self._rate and not self._recorded(ctx.trace_id):
            return (step, trigger, input, attempt, topic, time.time(), time.perf_counter())
        inv = Invocation(f"{self._prefix}{next(self._count):x}", ctx.trace_id, step.name, trigger, step.language,
                         ctx.flows, time.time(), time.perf_counter(), attempt, topic, input)
        self.running[id(ctx)] = inv
        return inv

    def end(self, ctx: Any, inv: Any, error: BaseException | None) -> None:
        self.busy -= 1
        self.finished += 1
        if self.tracing is not None and getattr(ctx, "span", None) is not None:
            self.tracing.end(ctx, error)
        if type(inv) is tuple:  # not recorded, unless it failed
            step, trigger, input, attempt, topic, started, t0 = inv
            if self.metrics is not None:
                self.metrics.invocation(step.name, trigger, attempt, error, time.perf_counter() - t0)
            if error is None or not self.recording:
                return
            inv = Invocation(f"{self._prefix}{next(self._count):x}", ctx.trace_id, step.name, trigger,
                             step.language, ctx.flows, started, t0, attempt, topic, input)
        else:
            self.running.pop(id(ctx), None)
            if self.metrics is not None:
                self.metrics.invocation(inv.step, inv.trigger, inv.attempt, error, time.perf_counter() - inv.t0)
        inv.duration = round((time.perf_counter() - inv.t0) * 1000, 3)
        if error is None:
            inv.status = "ok"
        else:
            inv.status = "error"
            kind = getattr(error, "type", None) or type(error).__name__
            inv.error = f"{kind}: {getattr(error, 'message', None) or error}"
            inv.stack = getattr(error, "stack", None) or None
            self.last_error[inv.language] = (time.time(), f"{inv.step}: {inv.error}")
        self._sink(encode(inv))

    def operation(self, ctx: Any, method: str, params: dict[str, Any], t0: float) -> None:
        """A host call made by a running handler (HandlerCalls reports each one)."""
        if method in STREAM_WRITES:
            if ctx is not None and ctx.step is not None:
                self.stream_writers.add((ctx.step.name, str(params.get("stream"))))
        elif method in STATE_WRITES:
            self._publish("state", {"op": method, "group": params.get("group"), "key": params.get("key"),
                                    "step": ctx.step.name if ctx is not None and ctx.step is not None else None})
        inv = self.running.get(id(ctx))
        if inv is None:
            return
        now = time.perf_counter()
        target = _target(method, params)
        event = params.get("event")
        data = (event.get("data") if isinstance(event, dict) else None) if method == "emit" else \
            params.get("value", params.get("data"))
        inv.ops.append((method, (t0 - inv.t0) * 1000, (now - t0) * 1000, target, data))

    def in_flight(self) -> int:
        return self.busy

    def running_in(self, trace_id: str) -> list[Invocation]:
        return [i for i in self.running.values() if i.trace_id == trace_id]
