"""Running a step's handler in its runner: event deliveries, cron ticks, API calls share this path."""

from __future__ import annotations

import uuid
from typing import Any

from jsonschema import validators

from . import wire
from .bus import Event, EventBus
from .logs import LogBook
from .project import Project, invoke_params
from .runners import InvocationContext, RunnerSupervisor, RunnerUnavailable
from .steps import Step


def new_trace_id() -> str:
    return uuid.uuid4().hex


class SchemaValidator:
    """JSON Schema validation compiled once per schema; errors as `{path, message}` for people."""

    def __init__(self, schema: dict[str, Any]) -> None:
        cls = validators.validator_for(schema)
        cls.check_schema(schema)
        self._validator = cls(schema)

    def errors(self, value: Any) -> list[dict[str, str]]:
        return [{"path": "/" + "/".join(str(p) for p in e.absolute_path), "message": e.message}
                for e in sorted(self._validator.iter_errors(value), key=lambda e: list(map(str, e.path)))]


class Invoker:
    def __init__(self, project: Project, bus: EventBus, logs: LogBook, event_timeout: float) -> None:
        self.project, self.bus, self.logs = project, bus, logs
        self.event_timeout = event_timeout
        self._validators: dict[tuple[str, str], SchemaValidator | None] = {}

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
                     timeout: float | None) -> Any:
        ctx = InvocationContext(step, trace_id, flows)
        return await self.supervisor(step).invoke(invoke_params(step, trigger, input, trace_id, flows), ctx,
                                                  timeout)

    async def deliver(self, step_name: str, event: Event) -> None:
        """The bus's delivery callback: validate the input, run the handler, raise if it failed."""
        step = self.project.step_named(step_name)
        if step is None:
            raise LookupError(f"step {step_name!r} is not loaded")
        validator = self.validator(step, "input")
        if validator and (errors := validator.errors(event.data)):
            reason = "event data does not match the step's input schema: " + "; ".join(
                f"{e['path']}: {e['message']}" for e in errors)
            self.logs.write("error", reason, step=step.name, trace_id=event.trace_id, flows=event.flows,
                            fields={"topic": event.topic, "eventId": event.id})
            self.bus.record_failure(step.name, event, reason)
            return
        try:
            await self.invoke(step, "event", event.data, event.trace_id, event.flows or step.flows,
                              step.handler_timeout or self.event_timeout)
        except Exception as e:
            self.log_failure(step, event.trace_id, e, topic=event.topic)
            raise

    async def tick(self, step: Step) -> None:
        trace_id = new_trace_id()
        try:
            await self.invoke(step, "cron", None, trace_id, step.flows, step.handler_timeout or self.event_timeout)
        except Exception as e:
            self.log_failure(step, trace_id, e)

    def log_failure(self, step: Step, trace_id: str, e: Exception, **fields: Any) -> None:
        stack = getattr(e, "stack", "")
        kind = getattr(e, "type", type(e).__name__)
        self.logs.write("error", f"handler failed: {kind}: {getattr(e, 'message', None) or e}", step=step.name,
                        trace_id=trace_id, flows=step.flows, fields={**fields, **({"stack": stack} if stack else {})})
