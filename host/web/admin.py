"""The admin API under `/__steppe/`: the CLI and (later) the Workbench use it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..bus import Event, new_event_id
from ..db import StorageError, storage_payload
from ..invoker import new_trace_id
from .api import json_response
from .dlq import dlq_routes
from .state_admin import state_routes

if TYPE_CHECKING:
    from ..app import Host


def step_row(host: Host, step: Any) -> dict[str, Any]:
    return {"name": step.name, "type": step.type, "language": step.language, "path": host.project.rel(step.path),
            "trigger": step.describe(), "status": step.status,
            "error": step.error or step.unavailable or step.unhealthy,
            "flows": step.flows, "emits": step.emits}


def admin_routes(host: Host) -> list[Route]:
    async def emit(request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
            topic = body["topic"]
            assert isinstance(topic, str) and topic
        except (orjson.JSONDecodeError, KeyError, TypeError, AssertionError):
            return json_response(400, {"error": "expected a JSON body {\"topic\": string, \"data\": any}"})
        if too_large := host.calls.oversize(body.get("data")):
            return json_response(413, {"error": "Payload Too Large", "limit": host.settings.max_event,
                                       "message": too_large})
        event = Event(topic=topic, data=body.get("data"), trace_id=new_trace_id(), emitted_by="steppe emit",
                      id=str(body.get("id") or new_event_id()))
        try:
            deliveries = await host.calls.publish(event, dedupe=bool(body.get("id")))
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
        return json_response(200, host.logs.query(trace_id=q.get("traceId"), step=q.get("step"),
                                                  limit=int(q.get("limit", "200"))))

    async def events(request: Request) -> Response:
        return json_response(200, {"unrouted": [e.as_dict() for e in host.bus.unrouted],
                                   "queue": await host.queue.counts()})

    async def health(request: Request) -> Response:
        runners = {lang: {"pid": s.process.pid if s.process else None, "restarts": s.restarts,
                          "unhealthy": s.unhealthy} for lang, s in host.project.supervisors.items()}
        return json_response(200, {"status": "ok", "runners": runners, "queue": await host.queue.counts(),
                                   "inFlight": host.worker.busy()})

    return [Route("/__steppe/emit", emit, methods=["POST"]), Route("/__steppe/steps", steps),
            Route("/__steppe/logs", logs), Route("/__steppe/events", events), Route("/__steppe/health", health),
            *dlq_routes(host.queue, host.worker.wake), *state_routes(host.state)]
