"""Admin read routes for tests and tools: what was emitted lately, what is in state and in streams.

GET /__steppe/emitted?topic=&traceId=&limit=   the last emitted events (oldest first)
DELETE /__steppe/emitted                       forget them (a test starting afresh)
GET /__steppe/state                            the state groups
GET /__steppe/state/{group}                    the values of one group
GET /__steppe/state/{group}/{key}              one value: 200 {"value"}, or 404
GET /__steppe/streams/{stream}/{group}         the items of a stream group
GET /__steppe/streams/{stream}/{group}/{id}    one item, or 404
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..db import StorageError, storage_payload
from ..streams.hub import UnknownStream
from .api import json_response, raw_segments
from .query import whole_number

if TYPE_CHECKING:
    from .ports import WebHost


def _limit(request: Request) -> int | None:
    limit = whole_number(request.query_params.get("limit", "200"))
    return limit if limit else None


def emitted_routes(host: WebHost) -> list[Route]:
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
        group, key = (raw_segments(request, 2, 2) + [None, None])[:2]
        try:
            if group is None:
                return json_response(200, {"groups": await host.state.groups()})
            if key is None:
                return json_response(200, {"group": group, "values": await host.state.get_group(group)})
            value = await host.state.get(group, key)
        except StorageError as e:
            return json_response(e.status, storage_payload(e))
        except (ValueError, TypeError) as e:
            return json_response(400, {"error": str(e)})
        if value is None:
            return json_response(404, {"error": f"no state value for key {key!r} in group {group!r}"})
        return json_response(200, {"group": group, "key": key, "value": value})

    async def stream(request: Request) -> Response:
        name, group, item = (raw_segments(request, 2, 3) + [None])[:3]
        assert name is not None and group is not None  # the routes match only with both
        try:
            if item is None:
                return json_response(200, {"stream": name, "group": group,
                                           "items": await host.streams.get_group(name, group)})
            found = await host.streams.get(name, group, item)
        except UnknownStream as e:
            return json_response(404, {"error": str(e)})
        except StorageError as e:
            return json_response(e.status, storage_payload(e))
        except (ValueError, TypeError) as e:
            return json_response(400, {"error": str(e)})
        if found is None:
            return json_response(404, {"error": f"no item {item!r} in group {group!r} of stream {name!r}"})
        return json_response(200, {"stream": name, "group": group, "item": found})

    return [Route("/__steppe/emitted", emitted, methods=["GET", "DELETE"]),
            Route("/__steppe/streams/{stream}/{rest:path}", stream),  # group and id: raw_segments
            Route("/__steppe/state", state), Route("/__steppe/state/{names:path}", state)]  # names: raw_segments
