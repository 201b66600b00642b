"""`/__steppe/api/unrouted`: events that no step subscribed to when they were emitted; once a subscriber
exists they can be replayed (sent again with their id, trace and payload) or dropped."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..bus import EventBus
from ..event import Event
from .api import json_response


def event_routes(bus: EventBus, publish: Callable[[Event], Awaitable[int | None]]) -> list[Route]:
    def listing_rows() -> list[dict[str, Any]]:
        return [{**e.as_dict(), "subscribers": len(bus.routes.get(e.topic, []))} for e in bus.unrouted]

    async def listing(request: Request) -> Response:
        return json_response(200, listing_rows())

    async def _ids(request: Request) -> list[str]:
        body = orjson.loads(await request.body() or b"{}")
        ids = body.get("ids") if isinstance(body, dict) else None
        if isinstance(body, dict) and body.get("all") is True:
            return [e.id for e in bus.unrouted]
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ValueError('expected {"ids": ["event id", ...]} or {"all": true}')
        return ids

    async def replay(request: Request) -> Response:
        try:
            ids = set(await _ids(request))
        except (orjson.JSONDecodeError, ValueError, AttributeError) as e:
            return json_response(400, {"error": str(e)})
        replayed, waiting = [], []
        for event in [e for e in bus.unrouted if e.id in ids]:
            if not bus.routes.get(event.topic):
                waiting.append(event.id)  # still nobody to deliver to: it stays listed, once
                continue
            bus.unrouted.remove(event)
            await publish(event)
            replayed.append(event.id)
        return json_response(200, {"replayed": replayed, "noSubscriber": waiting})

    async def drop(request: Request) -> Response:
        try:
            ids = set(await _ids(request))
        except (orjson.JSONDecodeError, ValueError, AttributeError) as e:
            return json_response(400, {"error": str(e)})
        dropped = [e for e in bus.unrouted if e.id in ids]
        for event in dropped:
            bus.unrouted.remove(event)
        return json_response(200, {"dropped": [e.id for e in dropped]})

    return [Route("/unrouted", listing),
            Route("/unrouted/replay", replay, methods=["POST"]),
            Route("/unrouted/drop", drop, methods=["POST"])]
