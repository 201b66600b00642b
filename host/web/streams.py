"""`/__steppe/api/streams`: the project's streams and a group's items (live updates come over the stream
socket, as for any client)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..streams.base import StreamStore
from ..streams.hub import Streams, UnknownStream
from .api import json_response, raw_segments


def stream_routes(project: Any, streams: Streams, store: StreamStore) -> list[Route]:
    async def listing(request: Request) -> Response:
        return json_response(200, [{"name": d.name, "language": d.language, "path": project.rel(d.path),
                                    "config": d.config, "canAccess": d.can_access}
                                   for d in project.streams.values()])

    async def groups(request: Request) -> Response:
        name = request.path_params["stream"]
        if not streams.has(name):
            return json_response(404, {"error": f"no stream named {name!r}"})
        return json_response(200, await store.groups(name))

    async def group(request: Request) -> Response:
        try:
            name, group_id = raw_segments(request, 3, 2)  # a group holding a `/` (sent as %2F) stays whole
            items = await streams.get_group(name, group_id)
        except (UnknownStream, ValueError) as e:
            return json_response(404 if isinstance(e, UnknownStream) else 400, {"error": str(e)})
        return json_response(200, items)

    return [Route("/streams", listing), Route("/streams/{stream}", groups),
            Route("/streams/{stream}/{group:path}", group)]
