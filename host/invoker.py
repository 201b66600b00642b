"""Running a step's handler in its runner: event deliveries, cron ticks, API calls share this path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import wire
from .event import new_id
from .logs import LogBook
from .project import DeliveryMeta, Project, invoke_params
from .queue import Delivery, Reject, StepPolicy
from .runners import InvocationContext, RunnerSupervisor, RunnerUnavailable
from .schema_messages import plain_message
from .steps import Step

new_trace_id = new_id  # trace ids are made like event ids (host/event.py)


@dataclass
class DeliveryContext(InvocationContext):
    """An event delivery's invocation: its emits are one hop further from the trace's first event."""

    hops: int = 0
    parent_span: str | None = None  # the emitting invocation's OpenTelemetry span id (hex), for tracing
    span: Any = None  # this invocation's OpenTelemetry span, while tracing is on
    span_id: str | None = None  # its id (hex): the parent of the events it emits


class LoopDetected(Reject):
    """An event past the hop limit: its trace keeps cycling, so it is dead-lettered instead of run."""


class SchemaValidator:
    """JSON Schema validation compiled once per schema; errors as `{path, message}` for people."""

    def __init__(self, schema: dict[str, Any]) -> None:
        from jsonschema import validators  # ~8 MB and ~70 ms: imported only once some step has a schema

        # the schema was checked against its metaschema when its step loaded (steps.validate_config)
        self._validator = validators.validator_for(schema)(schema)

    def errors(self, value: Any) -> list[dict[str, str]]:
        return [{"path": "/" + "/".join(str(p) for p in e.absolute_path), "message": plain_message(e)}
                for e in sorted(self._validator.iter_errors(value), key=lambda e: list(map(str, e.path)))]


class Invoker:
    def __init__(self, project: Project, logs: LogBook, event_timeout: float, max_hops: int = 25) -> None:
        self.project, self.logs = project, logs
        self.event_timeout = event_timeout
        self.max_hops = max_hops
        self._validators: dict[tuple[str, str], SchemaValidator | None] = {}
        self.recorder: Any = None  # the Workbench's InvocationRecorder: told when invocations begin and end

    def validator(self, step: Step, field: str) -> SchemaValidator | None:
        key = (str(step.path), field)
        if key not in self._validators:
            schema = step.config.get(field)
            self._validators[key] = SchemaValidator(schema) if isinstance(schema, dict) and schema else None
        return self._validators[key]

    def forget(self, step: Step) -> None:
        for key in [k for k in self._validators if k[0] == str(step.path)]:
            del self._validators[key]

    def supervisor(self, step: Step) -> RunnerSupervisor:
        sup = self.project.supervisors.get(step.language)
        if sup is None:
            raise RunnerUnavailable(step.unavailable or f"no {step.language} runner")
        return sup

    async def invoke(self, step: Step, trigger: wire.Trigger, input: Any, trace_id: str, flows: list[str],
                     timeout: float | None, delivery: DeliveryMeta | None = None, hops: int = 0,
                     parent_span: str | None = None, sampled: Any = None) -> Any:
        """`sampled`: the Workbench's recording decision for the trace when known (InvocationContext.sampled)."""
        ctx = DeliveryContext(step, trace_id, flows, hops=hops, parent_span=parent_span, sampled=sampled)
        params = invoke_params(step, trigger, input, trace_id, flows, delivery)
        if (recorder := self.recorder) is None:
            return await self.supervisor(step).invoke(params, ctx, timeout)
        record = recorder.begin(ctx, step, trigger, input, delivery.attempt if delivery else 1,
                                delivery.topic if delivery else None)
        try:
            result = await self.supervisor(step).invoke(params, ctx, timeout)
        except BaseException as e:
            recorder.end(ctx, record, e)
            raise
        recorder.end(ctx, record, None)
        return result

    async def run_hook(self, language: str, path: Path, name: str, trigger: wire.Trigger, input: Any,
                       timeout: float = 10.0) -> Any:
        """A file's entry point that is not a step (the auth hook, a stream's canAccess): a fresh trace, and
        no step, so its handler cannot emit."""
        sup = self.project.supervisors.get(language)
        if sup is None:
            raise RunnerUnavailable(f"no {language} runner")
        trace_id = new_trace_id()
        params: wire.InvokeParams = {"path": str(path), "step": name, "trigger": trigger, "input": input,
                                     "traceId": trace_id, "flows": []}
        return await sup.invoke(params, InvocationContext(None, trace_id, []), timeout)

    async def deliver(self, delivery: Delivery, policy: StepPolicy) -> None:
        """Run one delivery: raises Reject for input that fails the step's schema, anything else on failure."""
        step = self.project.step_named(delivery.step)
        if step is None:
            raise Reject(f"step {delivery.step!r} is not loaded")
        event = delivery.event
        if event.hops > self.max_hops:
            reason = (f"LoopDetected: event {event.topic!r} is {event.hops} emits deep in its trace, over the "
                      f"hop limit of {self.max_hops} (max_hops in steppe.toml); not delivered")
            self.logs.write("error", reason, step=step.name, trace_id=event.trace_id, flows=event.flows,
                            fields={"topic": event.topic, "eventId": event.id})
            raise LoopDetected(reason)
        validator = self.validator(step, "input")
        if validator and (errors := validator.errors(event.data)):
            reason = "event data does not match the step's input schema: " + "; ".join(
                f"{e['path']}: {e['message']}" for e in errors)
            self.logs.write("error", reason, step=step.name, trace_id=event.trace_id, flows=event.flows,
                            fields={"topic": event.topic, "eventId": event.id})
            raise Reject(reason)
        try:
            await self.invoke(step, "event", event.data, event.trace_id, event.flows or step.flows, policy.timeout,
                              DeliveryMeta(event.topic, delivery.attempts, event.id), event.hops, event.parent_span,
                              event.sampled)
        except Exception as e:
            self.log_failure(step, event.trace_id, e, topic=event.topic, attempt=delivery.attempts,
                             maxAttempts=policy.max_attempts)
            raise

    def policy(self, step: Step, runner_default_concurrency: int = 50) -> StepPolicy:
        q = step.queue
        timeout = step.handler_timeout or self.event_timeout
        if q.get("visibilityTimeout"):
            timeout = min(timeout, float(q["visibilityTimeout"]))
        return StepPolicy(step=step.name, runner=step.language, fifo=q.get("type") == "fifo",
                          concurrency=max(1, int(q.get("concurrency") or runner_default_concurrency)),
                          max_attempts=max(1, int(q.get("maxRetries", 3))), timeout=timeout,
                          delay=float(q.get("delaySeconds") or 0))

    async def tick(self, step: Step, trace_id: str | None = None) -> None:
        trace_id = trace_id or new_trace_id()
        try:
            await self.invoke(step, "cron", None, trace_id, step.flows, step.handler_timeout or self.event_timeout)
        except Exception as e:
            self.log_failure(step, trace_id, e)

    def log_failure(self, step: Step, trace_id: str, e: Exception, **fields: Any) -> None:
        stack = getattr(e, "stack", "")
        kind = getattr(e, "type", type(e).__name__)
        self.logs.write("error", f"handler failed: {kind}: {getattr(e, 'message', None) or e}", step=step.name,
                        trace_id=trace_id, flows=step.flows, fields={**fields, **({"stack": stack} if stack else {})})
