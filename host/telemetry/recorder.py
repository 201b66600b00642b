"""Recording every handler invocation: its step, trigger, timing, outcome, and the operations it asked of
the host (state reads and writes, emits, stream writes) with their timing.

The hot path pays for one small object per invocation and one tuple per operation; the ended invocation
becomes the row the telemetry store writes in its next batch.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from typing import Any

from ..event import NEW_TRACE
from .codec import encode
from .invocation import Invocation

_monotonic, _perf_counter = time.monotonic, time.perf_counter  # module globals: one lookup, not two

# the host calls whose arguments name what they touched, and which ones change state
_ADDRESS = {"state": ("group", "key"), "streams": ("stream", "groupId", "id")}
STATE_WRITES = {"state.set", "state.delete", "state.clear", "state.update"}
STREAM_WRITES = {"streams.set", "streams.delete", "streams.send"}
NOT_RECORDED = -1  # a trace's place in the recorder's memory when the sample left it out
GENERATION = 10_000  # traces remembered per generation (two are kept)
MAX_OPS = 1000  # host calls recorded per invocation; past it they are only counted


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
    trace has all of its invocations, up to `per_trace` of them: past that (a burst of 20,000 events is
    one trace) only its failures are, and the others are counted (`count_unrecorded`), so that a large
    trace costs neither the host's memory nor the writer's time in proportion to its size.
    """

    def __init__(self, sink: Callable[[tuple[Any, ...]], None], publish: Callable[[str, Any], None],
                 rate: float = 200.0, per_trace: int = 1000,
                 count_unrecorded: Callable[[str], None] | None = None) -> None:
        self._sink, self._publish = sink, publish
        self._count_unrecorded = count_unrecorded or (lambda trace_id: None)
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
        self._per_trace = per_trace  # 0: no cap
        self._tokens, self._refilled = rate, time.monotonic()
        # hash of the trace id → invocations of it begun so far (up to the cap), or NOT_RECORDED, for the newest
        # 10,000–20,000 traces seen (ints, not the ids, to keep it small). Two plain dicts, the newer one
        # replacing the older when it is full: a lookup and an insert per new trace, where an LRU
        # (OrderedDict) cost a microsecond, on every API request of a load test
        self._traces: dict[int, int] = {}
        self._older: dict[int, int] = {}
        self.recording = True  # False: the Workbench's store is off (`telemetry = false`), only the hooks below run
        self.tracing: Any = None  # the OpenTelemetry spans (telemetry/tracing.py), when a collector is configured
        self.metrics: Any = None  # the Prometheus counts (telemetry/metrics.py), unless `metrics = false`

    def _decide(self) -> int:
        """0 (record this new trace) or NOT_RECORDED, as the token bucket allows."""
        if not self._rate:
            return 0
        now = _monotonic()
        tokens = self._tokens + (now - self._refilled) * self._rate
        self._tokens = tokens if tokens < self._rate else self._rate
        self._refilled = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0
        self.skipped += 1
        return NOT_RECORDED

    def begin(self, ctx: Any, step: Any, trigger: str, input: Any, attempt: int = 1,
              topic: str | None = None) -> Any:
        """What `end` needs: the Invocation followed, or for one not recorded, what a failure needs (a
        tuple, saying whether the invocation is one of a recorded trace's past the cap)."""
        self.busy += 1
        if self.tracing is not None:
            self.tracing.start(ctx, step, trigger, attempt, topic)
        if not self.recording:
            return (step, trigger, input, attempt, topic, False, _perf_counter())
        sampled = ctx.sampled
        if sampled is False:  # inherited from the emitting invocation: its trace is left out
            return (step, trigger, input, attempt, topic, False, _perf_counter())
        if sampled is NEW_TRACE:  # the invocation starts its trace (an API request): decide, no lookup
            begun = self._decide()
            if begun < 0:  # the common case under load; its emits inherit the decision, so nothing is kept
                ctx.sampled = False
                return (step, trigger, input, attempt, topic, False, _perf_counter())
        key = hash(ctx.trace_id)
        traces = self._traces
        if sampled is not NEW_TRACE:
            # a trace seen before, or one from outside an invocation (an emit by the admin API, an event
            # stored before a restart or put by another host): what the recorder remembers of it, else decide
            known = traces.get(key)
            if known is None:
                known = self._older.get(key)
            begun = known if known is not None else 0 if sampled is True else self._decide()
        if len(traces) >= GENERATION:
            self._older = traces
            traces = self._traces = {}
        ctx.sampled = begun >= 0
        if begun < 0 or self._per_trace and begun >= self._per_trace:
            traces[key] = begun
            return (step, trigger, input, attempt, topic, begun >= 0, _perf_counter())
        traces[key] = begun + 1
        inv = Invocation(f"{self._prefix}{next(self._count):x}", ctx.trace_id, step.name, trigger, step.language,
                         ctx.flows, time.time(), _perf_counter(), attempt, topic, input)
        self.running[id(ctx)] = inv
        return inv

    def end(self, ctx: Any, inv: Any, error: BaseException | None) -> None:
        self.busy -= 1
        self.finished += 1
        if self.tracing is not None and getattr(ctx, "span", None) is not None:
            self.tracing.end(ctx, error)
        if type(inv) is tuple:  # not recorded, unless it failed
            step, trigger, input, attempt, topic, capped, t0 = inv
            if self.metrics is not None:
                self.metrics.invocation(step.name, trigger, attempt, error, _perf_counter() - t0)
            if error is None:
                if capped:  # only ever True while recording
                    self._count_unrecorded(ctx.trace_id)
                return
            if not self.recording:
                return
            started = time.time() - (_perf_counter() - t0)
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
        if len(inv.ops) >= MAX_OPS:  # a loop of state calls: its first ones show what it does
            inv.unrecorded_ops += 1
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
