"""OpenTelemetry traces: one span per handler invocation, exported over OTLP/HTTP when a collector is set.

The trace id of every span is Steppe's own trace id (already 32 hex characters), so a trace found in the
Workbench or a log line is the same trace in the collector. An event's delivery span is a child of the
invocation that emitted it: the emitting span's id travels on the event (`Event.parent_span`), through
whichever queue backend, to the delivery. The SDK is imported only when tracing is configured.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
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

    def __init__(self, exporter: Any, service_name: str) -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
        from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
        from opentelemetry.trace.propagation import set_span_in_context

        class SteppeIds(RandomIdGenerator):
            """A root span's trace id is the invocation's Steppe trace id (set just before the span starts)."""

            next_trace_id: int | None = None

            def generate_trace_id(self) -> int:
                trace_id, self.next_trace_id = self.next_trace_id, None
                return trace_id or super().generate_trace_id()

        self._ids = SteppeIds()
        resource = Resource.create({"service.name": service_name})
        self.provider = TracerProvider(resource=resource, id_generator=self._ids)
        self.provider.add_span_processor(BatchSpanProcessor(exporter))
        self._tracer = self.provider.get_tracer("steppe")
        self._kinds = {trigger: getattr(SpanKind, kind) for trigger, kind in _KINDS.items()}
        self._internal = SpanKind.INTERNAL
        self._remote_parent = lambda trace_id, span_id: set_span_in_context(NonRecordingSpan(SpanContext(
            trace_id, span_id, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))))
        self._error = lambda description: Status(StatusCode.ERROR, description)
        from opentelemetry.context import Context
        self._empty = Context

    @classmethod
    def from_settings(cls, settings: Any) -> Tracing | None:
        endpoint = configured_endpoint(settings)
        if endpoint is None:
            return None
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=endpoint) if endpoint else OTLPSpanExporter()
        name = settings.otel_service_name or os.environ.get("OTEL_SERVICE_NAME") or settings.root.name or "steppe"
        return cls(exporter, name)

    def start(self, ctx: Any, step: Any, trigger: str, attempt: int, topic: str | None) -> None:
        """Open the invocation's span; its id goes on the context, where emits pick it up as their parent."""
        trace_id = _hex_id(ctx.trace_id, 32)
        parent = _hex_id(getattr(ctx, "parent_span", None), 16)
        if trace_id is not None and parent is not None:
            context = self._remote_parent(trace_id, parent)
        else:
            context = self._empty()
            self._ids.next_trace_id = trace_id
        attributes: dict[str, Any] = {"steppe.step": step.name, "steppe.trigger": trigger,
                                      "steppe.language": step.language, "steppe.trace_id": ctx.trace_id}
        if ctx.flows:
            attributes["steppe.flows"] = list(ctx.flows)
        if topic is not None:
            attributes["steppe.topic"] = topic
            attributes["messaging.destination.name"] = topic
            attributes["steppe.attempt"] = attempt
        span = self._tracer.start_span(f"{trigger} {step.name}", context=context,
                                       kind=self._kinds.get(trigger, self._internal), attributes=attributes)
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
            span.set_status(self._error(f"{kind}: {message}"))
        span.end()

    def shutdown(self) -> None:
        """Export what is still buffered (at stop)."""
        self.provider.shutdown()
