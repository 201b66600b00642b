"""OpenTelemetry traces: one span per handler invocation, exported over OTLP/HTTP when a collector is set.

The trace id of every span is Steppe's own trace id (already 32 hex characters), so a trace found in the
Workbench or a log line is the same trace in the collector. An event's delivery span is a child of the
invocation that emitted it: the emitting span's id travels on the event (`Event.parent_span`), through
whichever queue backend, to the delivery. The SDK is imported only when tracing is configured.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

# span kinds by trigger: an API call is served, an event consumed, a cron tick internal
_KINDS = {"api": "SERVER", "event": "CONSUMER", "cron": "INTERNAL"}


def configured_endpoint(settings: Any, env: Mapping[str, str] | None = None) -> str | None:
    """Where spans go: `otel_endpoint` (a collector's base URL), else the standard OTLP env variables, else
    nowhere (None: tracing off)."""
    env = os.environ if env is None else env
    if settings.otel_endpoint:
        base = settings.otel_endpoint.rstrip("/")
        return base if base.endswith("/v1/traces") else base + "/v1/traces"
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return ""  # the exporter reads the env itself (and appends /v1/traces to the general one)
    return None


_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")


def upstream(traceparent: str) -> tuple[str, str] | None:
    """(trace id, span id) of a W3C `traceparent` header sent by a traced caller, or None when it is not a
    valid one: an API call then continues the caller's trace instead of starting its own."""
    match = _TRACEPARENT.fullmatch(traceparent.strip().lower())
    if match is None or match[1] == "ff" or not int(match[2], 16) or not int(match[3], 16):
        return None
    return match[2], match[3]


def _hex_id(value: str | None, length: int) -> int | None:
    """A hex id of `length` characters as the int OpenTelemetry keeps, or None when it is not one."""
    if not value or len(value) != length:
        return None
    try:
        number = int(value, 16)
    except ValueError:
        return None
    return number or None


class Tracing:
    """Starts and ends the spans of invocations; the recorder calls it when tracing is configured."""

    def __init__(self, exporter: Any, service_name: str,
                 on_problem: Callable[[str, str], None] | None = None) -> None:
        import asyncio

        from opentelemetry import trace
        from opentelemetry.context import Context
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

        class SteppeIds(RandomIdGenerator):
            """A root span's trace id is the invocation's Steppe trace id (set just before the span starts)."""

            next_trace_id: int | None = None

            def generate_trace_id(self) -> int:
                trace_id, self.next_trace_id = self.next_trace_id, None
                return trace_id or super().generate_trace_id()

        self._trace, self._context = trace, Context
        self._ids = SteppeIds()
        self._on_problem = on_problem
        self._loop: asyncio.AbstractEventLoop | None = None  # where health is told (exports run in a thread)
        self._exported_ok = True
        self.provider = TracerProvider(resource=Resource.create({"service.name": service_name}), id_generator=self._ids)
        self.provider.add_span_processor(BatchSpanProcessor(_watched(exporter, self._exported)))
        self._tracer = self.provider.get_tracer("steppe")
        self._kinds = {trigger: getattr(trace.SpanKind, kind) for trigger, kind in _KINDS.items()}
        self._sampled = trace.TraceFlags(trace.TraceFlags.SAMPLED)

    def _exported(self, ok: bool) -> None:
        """Told after each batch (in the exporter's thread): health hears when the collector stops or resumes
        taking spans."""
        if ok == self._exported_ok or self._on_problem is None or self._loop is None:
            return
        self._exported_ok = ok
        status, reason = ("ok", "") if ok else (
            "degraded", "the OpenTelemetry collector did not take the last batch of spans; those spans are lost")
        self._loop.call_soon_threadsafe(self._on_problem, status, reason)

    @classmethod
    def from_settings(cls, settings: Any, on_problem: Callable[[str, str], None] | None = None) -> Tracing | None:
        endpoint = configured_endpoint(settings)
        if endpoint is None:
            return None
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=endpoint) if endpoint else OTLPSpanExporter()
        name = settings.otel_service_name or os.environ.get("OTEL_SERVICE_NAME") or settings.root.name or "steppe"
        return cls(exporter, name, on_problem)

    def start(self, ctx: Any, step: Any, trigger: str, attempt: int, topic: str | None) -> None:
        """Open the invocation's span; its id goes on the context, where emits pick it up as their parent."""
        if self._loop is None:
            import asyncio

            self._loop = asyncio.get_running_loop()
        trace_id = _hex_id(ctx.trace_id, 32)
        parent = _hex_id(getattr(ctx, "parent_span", None), 16)
        if trace_id is not None and parent is not None:  # the emitter's span, possibly on another host
            emitter = self._trace.SpanContext(trace_id, parent, is_remote=True, trace_flags=self._sampled)
            context = self._trace.set_span_in_context(self._trace.NonRecordingSpan(emitter))
        else:
            context = self._context()  # a root: not a child of whatever span the host's code may be in
            self._ids.next_trace_id = trace_id
        attributes: dict[str, Any] = {"steppe.step": step.name, "steppe.trigger": trigger,
                                      "steppe.language": step.language, "steppe.trace_id": ctx.trace_id}
        if ctx.flows:
            attributes["steppe.flows"] = list(ctx.flows)
        if topic is not None:
            attributes["steppe.topic"] = topic
            attributes["messaging.destination.name"] = topic
            attributes["steppe.attempt"] = attempt
        kind = self._kinds.get(trigger, self._trace.SpanKind.INTERNAL)
        span = self._tracer.start_span(f"{trigger} {step.name}", context=context, kind=kind, attributes=attributes)
        ctx.span = span
        ctx.span_id = format(span.get_span_context().span_id, "016x")

    def end(self, ctx: Any, error: BaseException | None) -> None:
        span, ctx.span = ctx.span, None
        if error is not None:
            kind = getattr(error, "type", None) or type(error).__name__
            message = str(getattr(error, "message", None) or error)
            event = {"exception.type": kind, "exception.message": message}
            if stack := getattr(error, "stack", None):
                event["exception.stacktrace"] = str(stack)
            span.add_event("exception", event)
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, f"{kind}: {message}"))
        span.end()

    def shutdown(self) -> None:
        """Export what is still buffered (at stop)."""
        self.provider.shutdown()



def _watched(exporter: Any, told: Callable[[bool], None]) -> Any:
    """The OTLP exporter, telling whether each batch got through."""
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class Watched(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            result: SpanExportResult = exporter.export(spans)
            told(result is SpanExportResult.SUCCESS)
            return result

        def shutdown(self) -> None:
            exporter.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return bool(exporter.force_flush(timeout_millis))

    return Watched()
