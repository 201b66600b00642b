"""The full app: FastAPI's middleware (the header limit, the admin guard), its error answers (JSON 404s and
405s, the logged 500) and router, over the routes of host/web/routes.py. The front door (host/web/front.py)
builds it on the first request it does not answer itself: FastAPI and pydantic are imported only then."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import Scope

from .api import crash_response, json_response
from .guard import AdminGuard, AdminPolicy
from .limits import HeaderLimit

if TYPE_CHECKING:
    from .ports import WebHost


def _no_telemetry() -> dict[str, Any]:
    # FastAPI's built-in OpenTelemetry hooks look up the global tracer on every request (an os.environ
    # read each time); Steppe traces steps itself, so they stay off on this hot path.
    import inspect

    if "telemetry" in inspect.signature(FastAPI.__init__).parameters:  # FastAPI releases with OpenTelemetry
        return {"telemetry": {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}}
    return {}


def build_app(host: WebHost, routes: list[BaseRoute]) -> FastAPI:
    """The full app over `routes`, the front door's list itself (so a dev reload reaches both)."""
    app = FastAPI(title=f"Steppe: {host.settings.root.name}", openapi_url=None, docs_url=None, redoc_url=None,
                  **_no_telemetry())
    app.router.routes = routes

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
