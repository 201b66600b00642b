"""The admin API under `/__steppe/`: the CLI and (later) the Workbench use it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..bus import Event, new_event_id
from ..db import StorageError, storage_payload
from ..event import emitted_fields
from ..invoker import new_trace_id
from .api import BodyError, json_response, read_body
from .dlq import dlq_routes
from .limits import json_too_deep
from .probes import probe_routes, runners_route
from .query import whole_number

EMIT_ENVELOPE = 64 * 1024  # bytes an emit body may hold besides its data (topic, id, JSON punctuation)
MAX_LOG_LIMIT = 10_000  # most log records one /__steppe/logs answer returns

if TYPE_CHECKING:
    from .ports import AdminHost


def step_row(host: AdminHost, step: Any) -> dict[str, Any]:
    return {"name": step.name, "type": step.type, "language": step.language, "path": host.project.rel(step.path),
            "trigger": step.describe(), "status": step.status,
            "error": step.error or step.unavailable or step.unhealthy,
            "flows": step.flows, "emits": step.emits}


def admin_routes(host: AdminHost) -> list[Route]:
    s = host.settings

    async def emit(request: Request) -> Response:
        try:  # the body may hold data up to max_event plus its envelope; a larger one is refused unread
            raw = await read_body(request, s.max_event + EMIT_ENVELOPE)
        except BodyError as e:
            return json_response(413, {**e.payload, "limit": s.max_event,
                                       "message": f"emit bodies are limited to max_event ({s.max_event} bytes) of "
                                                  "data"})
        if json_too_deep(raw, s.max_json_depth):
            return json_response(400, {"error": "JSON body nested too deeply", "limit": s.max_json_depth})
        try:
            body = orjson.loads(raw)
            topic = body["topic"]
            assert isinstance(topic, str) and topic
        except (orjson.JSONDecodeError, KeyError, TypeError, AssertionError):
            return json_response(400, {"error": "expected a JSON body {\"topic\": string, \"data\": any, "
                                       "\"id\"?: string}"})
        try:
            event_id, group = emitted_fields(body)
        except ValueError as e:
            return json_response(400, {"error": str(e)})
        try:
            too_large = host.calls.oversize(body.get("data"))
        except TypeError as e:  # orjson refuses what it cannot store (e.g. nesting past its own limit)
            return json_response(400, {"error": "data cannot be stored as an event", "reason": str(e)})
        if too_large:
            return json_response(413, {"error": "Payload Too Large", "limit": s.max_event, "message": too_large})
        event = Event(topic=topic, data=body.get("data"), trace_id=new_trace_id(), emitted_by="steppe emit",
                      message_group_id=group, id=event_id or new_event_id())
        try:
            deliveries = await host.calls.publish(event, dedupe=event_id is not None)
        except StorageError as e:  # not accepted: the queue cannot write (507) or is unusable (503)
            return json_response(e.status, storage_payload(e))
        return json_response(202, {"id": event.id, "traceId": event.trace_id, "deliveries": deliveries or 0,
                                   "duplicate": deliveries is None})

    async def steps(request: Request) -> Response:
        rows = [step_row(host, s) for s in host.project.steps.values()]
        streams = [{"name": s.name, "language": s.language, "path": host.project.rel(s.path)}
                   for s in host.project.streams.values()]
        return json_response(200, {"root": str(host.settings.root), "steps": rows, "streams": streams,
                                   "streamErrors": host.project.stream_errors})

    async def logs(request: Request) -> Response:
        q = request.query_params
        limit = whole_number(q.get("limit", "200"))
        if limit is None or not 1 <= limit <= MAX_LOG_LIMIT:
            return json_response(400, {"error": f"limit must be an integer from 1 to {MAX_LOG_LIMIT}",
                                       "limit": q.get("limit")})
        return json_response(200, host.logs.query(trace_id=q.get("traceId"), step=q.get("step"), limit=limit))

    async def events(request: Request) -> Response:
        return json_response(200, {"unrouted": [e.as_dict() for e in host.bus.unrouted],
                                   "queue": await host.queue.counts(), "stepsGone": host.steps_gone})

    return [Route("/__steppe/emit", emit, methods=["POST"]), Route("/__steppe/steps", steps),
            Route("/__steppe/logs", logs), Route("/__steppe/events", events),
            *probe_routes(host.health, lambda: host.serving),
            runners_route(lambda: host.project.supervisors, host.queue.counts, host.worker.busy),
            *dlq_routes(host.queue, host.worker.wake)]
