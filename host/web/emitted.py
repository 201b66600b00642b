"""Admin read routes for tests and tools: what was emitted lately, and what is in state.

GET /__steppe/emitted?topic=&traceId=&limit=   the last emitted events (oldest first)
DELETE /__steppe/emitted                       forget them (a test starting afresh)
GET /__steppe/state                            the state groups
GET /__steppe/state/{group}                    the values of one group
GET /__steppe/state/{group}/{key}              one value: 200 {"value"}, or 404
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..db import StorageError, storage_payload
from .api import json_response

if TYPE_CHECKING:
    from ..app import Host


def _limit(request: Request) -> int | None:
    raw = request.query_params.get("limit", "200")
    return int(raw) if raw.isdigit() and int(raw) > 0 else None


def emitted_routes(host: Host) -> list[Route]:
    async def emitted(request: Request) -> Response:
        if request.method == "DELETE":
            host.calls.emitted.clear()
            return json_response(200, {"cleared": True})
        if (limit := _limit(request)) is None:
            return json_response(400, {"error": "limit must be a positive whole number"})
        q = request.query_params
        return json_response(200, host.calls.emitted.query(topic=q.get("topic"), trace_id=q.get("traceId"),
                                                           limit=limit))

    async def state(request: Request) -> Response:
        group, key = request.path_params.get("group"), request.path_params.get("key")
        try:
            if group is None:
                return json_response(200, {"groups": await host.state.groups()})
            if key is None:
                return json_response(200, {"group": group, "items": await host.state.get_group(group)})
            value = await host.state.get(group, key)
        except StorageError as e:
            return json_response(e.status, storage_payload(e))
        except (ValueError, TypeError) as e:
            return json_response(400, {"error": str(e)})
        if value is None:
            return json_response(404, {"error": f"no state value for key {key!r} in group {group!r}"})
        return json_response(200, {"group": group, "key": key, "value": value})

    return [Route("/__steppe/emitted", emitted, methods=["GET", "DELETE"]),
            Route("/__steppe/state", state), Route("/__steppe/state/{group}", state),
            Route("/__steppe/state/{group}/{key:path}", state)]
