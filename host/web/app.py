"""The ASGI app: step routes, the admin API, the OpenAPI document, the stream socket, static files.

Routes are built from the project each time it changes (dev reload swaps them in place).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from ..steps import starlette_path
from ..streams.ws import make_stream_socket_endpoint
from .admin import admin_routes
from .api import crash_response, json_response
from .emitted import emitted_routes
from .front import SteppeApp, StepTable
from .guard import AdminGuard, AdminPolicy
from .limits import HeaderLimit
from .metrics import metrics_routes
from .openapi import openapi_document
from .operate import operate_routes
from .step_endpoint import StepEndpoint
from .unloaded import unloaded_routes
from .workbench import workbench_routes

if TYPE_CHECKING:
    from .ports import WebHost

STATIC = Path(__file__).resolve().parent.parent / "static"


def _no_telemetry() -> dict[str, Any]:
    # FastAPI's built-in OpenTelemetry hooks look up the global tracer on every request (an os.environ
    # read each time); Steppe traces steps itself, so they stay off on this hot path.
    import inspect

    if "telemetry" in inspect.signature(FastAPI.__init__).parameters:  # FastAPI releases with OpenTelemetry
        return {"telemetry": {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}}
    return {}


def build_routes(host: WebHost) -> list[BaseRoute]:
    s = host.settings
    steps = host.project.ok_steps("api")
    document = openapi_document(steps, f"Steppe: {s.root.name}")

    async def openapi(request: Request) -> Response:
        return json_response(200, document)

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


def build_app(host: WebHost) -> SteppeApp:
    app = SteppeApp(title=f"Steppe: {host.settings.root.name}", openapi_url=None, docs_url=None, redoc_url=None,
                  **_no_telemetry())

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        error = {404: "Not Found", 405: "Method Not Allowed"}.get(status, "Error")
        headers = {k.lower(): v for k, v in (getattr(exc, "headers", None) or {}).items()}
        if status == 405:
            headers["allow"] = ", ".join(allowed_methods(app.router.routes, request.scope))
        return json_response(status, {"error": error, "method": request.method, "path": request.url.path},
                             headers=headers)

    async def internal_error(request: Request, exc: Exception) -> Response:
        return crash_response(host.logs, request.method, request.url.path, exc)

    app.add_exception_handler(404, http_error)
    app.add_exception_handler(405, http_error)
    app.add_exception_handler(Exception, internal_error)
    app.add_middleware(AdminGuard, policy=AdminPolicy.of(host.settings))
    app.add_middleware(HeaderLimit, limit=host.settings.max_headers)  # added last: runs first
    app.max_headers = host.settings.max_headers  # the front door leaves larger heads to HeaderLimit
    return app


def allowed_methods(routes: list[BaseRoute], scope: Scope) -> list[str]:
    """Every method some route answers at this path (for a 405's `Allow`)."""
    methods: set[str] = set()
    for route in routes:
        if isinstance(route, Route) and route.methods and route.matches(scope)[0] != Match.NONE:
            methods |= route.methods
        elif isinstance(route, Mount) and route.matches(scope)[0] != Match.NONE:  # public/ static files
            methods |= {"GET", "HEAD"}
    return sorted(methods)
