"""What a running handler may ask of the host: emit, state.*, streams.* (protocol/SPEC.md, runner → host)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from .bus import Event, EventBus, new_event_id
from .db import as_storage_error
from .emitted import EmittedLog
from .event import emitted_fields
from .logs import LogBook
from .rpc import Refusal
from .runners import InvocationContext
from .state import StateStore
from .state.ops import StateConflict
from .streams.hub import Streams, UnknownStream


class HandlerCalls:
    def __init__(self, bus: EventBus, state: StateStore, streams: Streams, logs: LogBook,
                 max_event: int) -> None:
        self.bus, self.state, self.streams, self.logs = bus, state, streams, logs
        self.max_event = max_event
        # the Workbench's recorder: told (context, method, params, start) after each call of a handler
        self.observe: Callable[[InvocationContext | None, str, dict[str, Any], float], None] | None = None
        self.emitted = EmittedLog()  # what was emitted lately, for tests and tools (GET /__steppe/emitted)
        # the stores check their arguments (ValueError/TypeError → InvalidParams below): no second check here
        self._table = {
            "emit": self.emit,
            "state.get": lambda c, p: self.state.get(p.get("group"), p.get("key")),
            "state.set": lambda c, p: self.state.set(p.get("group"), p.get("key"), p.get("value"), p.get("ttl")),
            "state.update": lambda c, p: self.state.update(p.get("group"), p.get("key"), p.get("ops"), p.get("ttl")),
            "state.delete": lambda c, p: self.state.delete(p.get("group"), p.get("key")),
            "state.getGroup": lambda c, p: self.state.get_group(p.get("group")),
            "state.clear": lambda c, p: self.state.clear(p.get("group")),
            "streams.get": lambda c, p: self.streams.get(p.get("stream"), p.get("groupId"), p.get("id")),
            "streams.set": lambda c, p: self.streams.set(p.get("stream"), p.get("groupId"), p.get("id"),
                                                         p.get("data")),
            "streams.delete": lambda c, p: self.streams.delete(p.get("stream"), p.get("groupId"), p.get("id")),
            "streams.getGroup": lambda c, p: self.streams.get_group(p.get("stream"), p.get("groupId")),
            "streams.send": lambda c, p: self.streams.send(p.get("stream"), p.get("channel") or {},
                                                           p.get("event") or {}),
        }

    async def __call__(self, ctx: InvocationContext | None, method: str, params: dict[str, Any]) -> Any:
        call = self._table.get(method)
        if call is None:
            raise Refusal("MethodNotFound", f"the host has no method {method!r}", code=-32601)
        started = time.perf_counter()
        try:
            return await call(ctx, params)
        except UnknownStream as e:
            raise Refusal("UnknownStream", str(e)) from None
        except StateConflict as e:  # a failed `expect`: the handler catches it by this name
            raise Refusal("StateConflict", str(e)) from None
        except (ValueError, TypeError, KeyError) as e:
            raise Refusal("InvalidParams", f"{method}: {e}") from None
        except Exception as e:  # a storage fault (SQLite, Redis): the handler sees StorageFull / StorageUnavailable
            if (fault := as_storage_error(e)) is None:
                raise
            raise Refusal(fault.kind, str(fault)) from None
        finally:
            if self.observe is not None:
                self.observe(ctx, method, params, started)

    async def emit(self, ctx: InvocationContext | None, params: dict[str, Any]) -> None:
        if ctx is None or ctx.step is None:
            raise Refusal("UnknownInvocation", "emit is only possible from a step handler that is still running")
        step = ctx.step
        event = params.get("event")
        if not isinstance(event, dict) or not isinstance(event.get("topic"), str) or not event["topic"]:
            raise Refusal("InvalidParams", "emit needs {topic: string, data}")
        topic = event["topic"]
        declared = step.emits
        if declared and topic not in declared:
            msg = (f"step {step.name!r} emitted topic {topic!r}, which is not in its config.emits "
                   f"{declared}; the event was not sent")
            self.logs.write("error", msg, step=step.name, trace_id=ctx.trace_id, flows=ctx.flows)
            raise Refusal("UndeclaredTopic", msg)
        if too_large := self.oversize(event.get("data")):
            raise Refusal("PayloadTooLarge", too_large)
        try:
            event_id, group = emitted_fields(event)
        except ValueError as e:
            raise Refusal("InvalidParams", f"emit: {e}") from None
        await self.publish(Event(topic=topic, data=event.get("data"), trace_id=ctx.trace_id, flows=ctx.flows,
                                 message_group_id=group, emitted_by=step.name, id=event_id or new_event_id(),
                                 hops=getattr(ctx, "hops", 0) + 1, parent_span=getattr(ctx, "span_id", None),
                                 sampled=ctx.sampled if type(ctx.sampled) is bool else None),
                           dedupe=event_id is not None)

    def oversize(self, data: Any) -> str | None:
        """Why `data` may not be emitted (over max_event once encoded), or None."""
        size = len(orjson.dumps(data))
        if size <= self.max_event:
            return None
        return f"emit data is {size} bytes, over the {self.max_event}-byte limit (max_event in steppe.toml)"

    async def publish(self, event: Event, dedupe: bool = False) -> int | None:
        count = await self.bus.publish(event, dedupe)
        if count is not None:
            self.emitted.record(event, count)
        if count is None:
            self.logs.write("info", f"event {event.id} was already accepted; this emit is ignored",
                            step=event.emitted_by, trace_id=event.trace_id, flows=event.flows)
        elif count == 0:
            self.logs.write("warn", f"no step subscribes to {event.topic!r}; event kept as unrouted",
                            step=event.emitted_by, trace_id=event.trace_id, flows=event.flows)
        return count

