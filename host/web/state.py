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
from .api import json_response, raw_segments


def state_routes(store: StateStore, publish: Callable[[str, Any], None]) -> list[Route]:
    async def groups(request: Request) -> Response:
        return json_response(200, {"groups": await store.groups()})

    async def by_name(request: Request) -> Response:
        """`/state/{group}` (GET, DELETE) and `/state/{group}/{key}` (PUT, DELETE), the names read from the raw
        path so that one holding a `/` (sent as %2F) stays whole."""
        names = raw_segments(request, 3, 2)
        allowed = ("GET", "DELETE") if len(names) == 1 else ("PUT", "DELETE")
        if request.method not in allowed:
            return json_response(405, {"error": "Method Not Allowed"}, headers={"allow": ", ".join(allowed)})
        if len(names) == 1:
            return await (group if request.method == "GET" else clear)(request, names[0])
        return await (put if request.method == "PUT" else delete)(request, *names)

    async def group(request: Request, g: str) -> Response:
        now = time.time()
        try:
            rows = await store.entries(g)
        except ValueError as e:
            return json_response(400, {"error": str(e)})
        return json_response(200, {"group": g, "now": now, "keys": [
            {**r, "ttlLeft": round(r["expiresAt"] - now, 3) if r["expiresAt"] else None} for r in rows]})

    async def put(request: Request, g: str, k: str) -> Response:
        try:
            body = orjson.loads(await request.body())
            if not isinstance(body, dict) or "value" not in body:
                raise ValueError('expected a JSON body {"value": any, "ttl"?: seconds}')
            value = await store.set(g, k, body["value"], body.get("ttl"))
        except (orjson.JSONDecodeError, ValueError, TypeError) as e:
            return json_response(400, {"error": str(e)})
        publish("state", {"op": "state.set", "group": g, "key": k, "step": None})
        return json_response(200, {"group": g, "key": k, "value": value})

    async def delete(request: Request, g: str, k: str) -> Response:
        try:
            old = await store.delete(g, k)
        except ValueError as e:
            return json_response(400, {"error": str(e)})
        publish("state", {"op": "state.delete", "group": g, "key": k, "step": None})
        return json_response(200, {"group": g, "key": k, "deleted": old is not None})

    async def clear(request: Request, g: str) -> Response:
        try:
            await store.clear(g)
        except ValueError as e:
            return json_response(400, {"error": str(e)})
        publish("state", {"op": "state.clear", "group": g, "key": None, "step": None})
        return json_response(200, {"group": g, "cleared": True})

    return [Route("/state", groups), Route("/state/{names:path}", by_name, methods=["GET", "PUT", "DELETE"])]
