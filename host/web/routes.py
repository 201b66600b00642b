"""The router's list: step routes, the admin API, the OpenAPI document, the stream socket, static files;
and the front door serving it. Built from the project each time it changes (dev reload swaps the list's
contents in place). Starlette routes only: FastAPI comes in with the full app (host/web/app.py), on the
first request the front door leaves to it."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from ..steps import starlette_path
from ..streams.ws import make_stream_socket_endpoint
from .admin import admin_routes
from .api import json_response
from .emitted import emitted_routes
from .front import FrontDoor, StepTable
from .metrics import metrics_routes
from .openapi import openapi_document
from .operate import operate_routes
from .step_endpoint import StepEndpoint
from .unloaded import unloaded_routes
from .workbench import workbench_routes

if TYPE_CHECKING:
    from .ports import WebHost

STATIC = Path(__file__).resolve().parent.parent / "static"


def build_routes(host: WebHost) -> list[BaseRoute]:
    s = host.settings
    steps = host.project.ok_steps("api")
    document: list[Any] = []  # made on the first request for it, once per build of the routes

    async def openapi(request: Request) -> Response:
        if not document:
            document.append(openapi_document(steps, f"Steppe: {s.root.name}"))
        return json_response(200, document[0])

    routes: list[BaseRoute] = [Route("/openapi.json", openapi), *admin_routes(host), *workbench_routes(host),
                               *emitted_routes(host), *operate_routes(host)]
    metrics = getattr(host, "metrics", None)
    if metrics is not None:
        routes += metrics_routes(host, metrics)
    front = list(routes)
    step_routes = [Route(starlette_path(step.route), StepEndpoint(
        step, host.invoker, host.logs, max_body=s.max_body, timeout=s.api_timeout, expose_errors=s.mode == "dev",
        max_depth=s.max_json_depth, metrics=metrics), methods=[step.method], name=step.name) for step in steps]
    routes = [StepTable(front, step_routes), *front, *step_routes]
    routes += unloaded_routes(list(host.project.steps.values()), {(st.method, st.route) for st in steps}, s.root,
                              expose_errors=s.mode == "dev")
    client_js = STATIC / "client.js"
    if client_js.exists():
        routes.append(Route("/__steppe/client.js", lambda request: FileResponse(
            client_js, media_type="text/javascript", headers={"cache-control": "no-cache"})))
    routes.append(WebSocketRoute("/{path:path}", make_stream_socket_endpoint(
        host.streams, host.hub,
        authenticate=host.authenticate if host.project.auth else None, can_access=host.can_access)))
    if (public := s.root / "public").is_dir():  # the project's static files, after every step route
        routes.append(Mount("/", StaticFiles(directory=public, html=True), name="public"))
    return routes


def front_door(host: WebHost) -> FrontDoor:
    """The app to serve (its routes come with Host.refresh); the full app is built when first needed."""

    def build_full_app(routes: list[BaseRoute]) -> Any:
        return importlib.import_module(".app", __package__).build_app(host, routes)

    return FrontDoor(build_full_app, host.logs, host.settings.max_headers)
