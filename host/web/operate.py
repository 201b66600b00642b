"""Admin routes that act: write or delete a state value, run a cron step now, publish unrouted events
again (`steppe state`, `steppe cron run`, `steppe events replay`).

PUT /__steppe/state/{group}/{key} {"value", "ttl"?}   200 {"group", "key", "value"}
DELETE /__steppe/state/{group}/{key}                  200 {"deleted": bool}
POST /__steppe/cron/{name}/run                        200 {"traceId", "ok", "error"?} once the handler ended
POST /__steppe/events/replay {"ids": [...]} | {"all": true}   200 {"replayed", "deliveries"}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..db import StorageError, storage_payload
from ..invoker import new_trace_id
from .api import json_response

if TYPE_CHECKING:
    from .ports import WebHost


async def _json_object(request: Request) -> dict[str, Any] | None:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None


def operate_routes(host: WebHost) -> list[Route]:
    async def state_item(request: Request) -> Response:
        group, key = request.path_params["group"], request.path_params["key"]
        try:
            if request.method == "DELETE":
                return json_response(200, {"deleted": await host.state.delete(group, key) is not None})
            body = await _json_object(request)
            if body is None or "value" not in body:
                return json_response(400, {"error": "expected a JSON body {\"value\": any, \"ttl\"?: seconds}"})
            ttl = body.get("ttl")
            if ttl is not None and (not isinstance(ttl, (int, float)) or isinstance(ttl, bool) or ttl <= 0):
                return json_response(400, {"error": "ttl must be a positive number of seconds"})
            value = await host.state.set(group, key, body["value"], ttl)
        except StorageError as e:
            return json_response(e.status, storage_payload(e))
        except (ValueError, TypeError) as e:
            return json_response(400, {"error": str(e)})
        return json_response(200, {"group": group, "key": key, "value": value})

    async def cron_run(request: Request) -> Response:
        name = request.path_params["name"]
        step = host.project.step_named(name)  # loaded steps only
        if step is None or step.type != "cron":
            crons = sorted(s.name for s in host.project.ok_steps("cron"))
            return json_response(404, {"error": f"no cron step named {name!r}", "cronSteps": crons})
        trace_id = new_trace_id()
        try:
            await host.invoker.invoke(step, "cron", None, trace_id, step.flows,
                                      step.handler_timeout or host.settings.event_timeout)
        except Exception as e:  # the handler's failure is the answer, not a server error
            host.invoker.log_failure(step, trace_id, e)
            return json_response(200, {"traceId": trace_id, "ok": False,
                                       "error": str(getattr(e, "message", None) or e)})
        return json_response(200, {"traceId": trace_id, "ok": True})

    async def replay_unrouted(request: Request) -> Response:
        body = await _json_object(request)
        ids = body.get("ids") if body else None
        if body is None or not (body.get("all") is True or (isinstance(ids, list) and ids)):
            return json_response(400, {"error": "expected {\"ids\": [event ids]} or {\"all\": true}"})
        wanted = {str(i) for i in ids} if isinstance(ids, list) else set()
        chosen = [e for e in host.bus.unrouted if body.get("all") is True or e.id in wanted]
        replayed = deliveries = 0
        for event in chosen:
            host.bus.unrouted.remove(event)  # published again below: kept again if still nobody subscribes
            try:
                deliveries += await host.calls.publish(event) or 0
            except StorageError as e:
                host.bus.unrouted.append(event)
                return json_response(e.status, {**storage_payload(e), "replayed": replayed})
            replayed += 1
        return json_response(200, {"replayed": replayed, "deliveries": deliveries})

    return [Route("/__steppe/state/{group}/{key:path}", state_item, methods=["PUT", "DELETE"]),
            Route("/__steppe/cron/{name:path}/run", cron_run, methods=["POST"]),
            Route("/__steppe/events/replay", replay_unrouted, methods=["POST"])]
