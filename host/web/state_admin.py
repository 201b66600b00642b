"""Read-only state under `/__steppe/state`: the groups, a group's values, one key's value. For people and
tools looking at a running project (the tutorial dialect's groupless state is the group `default`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..state import StateStore
from .api import json_response


def state_routes(state: StateStore) -> list[Route]:
    async def groups(request: Request) -> Response:
        return json_response(200, {"groups": await state.groups()})

    async def group(request: Request) -> Response:
        name = request.path_params["group"]
        return json_response(200, {"group": name, "values": await state.get_group(name)})

    async def key(request: Request) -> Response:
        name, key = request.path_params["group"], request.path_params["key"]
        value = await state.get(name, key)
        if value is None:
            return json_response(404, {"error": "Not Found", "group": name, "key": key})
        return json_response(200, {"group": name, "key": key, "value": value})

    return [Route("/__steppe/state", groups), Route("/__steppe/state/{group}", group),
            Route("/__steppe/state/{group}/{key:path}", key)]
