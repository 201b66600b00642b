"""`/__steppe/api/state`: groups, a group's keys (value, expiry), and editing them from the Workbench.
Every change is told to the live feed, as handlers' changes are."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..state import StateStore
from .api import json_response


def state_routes(store: StateStore, publish: Callable[[str, Any], None]) -> list[Route]:
    async def groups(request: Request) -> Response:
        return json_response(200, {"groups": await store.groups()})

    async def group(request: Request) -> Response:
        now = time.time()
        try:
            rows = await store.entries(request.path_params["group"])
        except ValueError as e:
            return json_response(400, {"error": str(e)})
        return json_response(200, {"group": request.path_params["group"], "now": now, "keys": [
            {**r, "ttlLeft": round(r["expiresAt"] - now, 3) if r["expiresAt"] else None} for r in rows]})

    async def put(request: Request) -> Response:
        g, k = request.path_params["group"], request.path_params["key"]
        try:
            body = orjson.loads(await request.body())
            if not isinstance(body, dict) or "value" not in body:
                raise ValueError('expected a JSON body {"value": any, "ttl"?: seconds}')
            value = await store.set(g, k, body["value"], body.get("ttl"))
        except (orjson.JSONDecodeError, ValueError, TypeError) as e:
            return json_response(400, {"error": str(e)})
        publish("state", {"op": "state.set", "group": g, "key": k, "step": None})
        return json_response(200, {"group": g, "key": k, "value": value})

    async def delete(request: Request) -> Response:
        g, k = request.path_params["group"], request.path_params["key"]
        try:
            old = await store.delete(g, k)
        except ValueError as e:
            return json_response(400, {"error": str(e)})
        publish("state", {"op": "state.delete", "group": g, "key": k, "step": None})
        return json_response(200, {"group": g, "key": k, "deleted": old is not None})

    async def clear(request: Request) -> Response:
        g = request.path_params["group"]
        try:
            await store.clear(g)
        except ValueError as e:
            return json_response(400, {"error": str(e)})
        publish("state", {"op": "state.clear", "group": g, "key": None, "step": None})
        return json_response(200, {"group": g, "cleared": True})

    return [Route("/state", groups), Route("/state/{group}", group),
            Route("/state/{group}", clear, methods=["DELETE"]),
            Route("/state/{group}/{key}", put, methods=["PUT"]),
            Route("/state/{group}/{key}", delete, methods=["DELETE"])]
