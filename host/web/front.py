"""The app's front door: an API step's request goes straight to its endpoint; everything else (the admin
API and the Workbench under /__steppe/, 404s and 405s, unloaded steps, public/ files, the stream socket)
goes through FastAPI's middleware and router as before.

Why: the full stack costs the host's one thread about as much per request as the step's own work (four
middleware layers, then the router tries every admin and Workbench route, each a regex, before the step
routes). The front door answers the same: it takes only requests the router would have sent to the same
step endpoint (the first route in the router's order that matches path and method), with headers within
`max_headers` (HeaderLimit's 431 stays in the stack), off /__steppe/ (the guard's business), and not shadowed
by an earlier route outside /__steppe/.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match, NoMatchFound, Route
from starlette.types import Receive, Scope, Send

from .guard import PREFIX
from .limits import header_bytes
from .step_endpoint import StepEndpoint

Found = tuple[StepEndpoint, dict[str, Any]]


class StepTable(BaseRoute):
    """The step routes, indexed for the front door. It sits first in the router's list (so a dev reload,
    which replaces that list in place, replaces it too) and never matches there itself: the router keeps
    serving the steps' own Routes, which follow it, on the paths the front door leaves to it."""

    def __init__(self, front: list[BaseRoute], steps: list[Route]) -> None:
        # routes before the steps outside /__steppe/ (the OpenAPI document, the Workbench's `/` redirect):
        # their exact paths, and the others to match as the router would
        self.shadowing: set[str] = set()
        self.shadowing_routes: list[BaseRoute] = []
        for route in front:
            path = getattr(route, "path", "")
            if isinstance(route, Route) and not route.param_convertors:
                if not path.startswith(PREFIX):
                    self.shadowing.add(path)
            elif not path.startswith(PREFIX + "/"):
                self.shadowing_routes.append(route)
        # (method, path) → first step in the router's order with that exact path; parameter paths in order
        self.exact: dict[tuple[str, str], tuple[int, StepEndpoint]] = {}
        self.patterns: list[tuple[int, re.Pattern[str], dict[str, Any], frozenset[str], StepEndpoint]] = []
        for index, route in enumerate(steps):
            endpoint = route.endpoint
            if not isinstance(endpoint, StepEndpoint):
                continue
            methods = frozenset(route.methods or ())
            if route.param_convertors:
                self.patterns.append((index, route.path_regex, route.param_convertors, methods, endpoint))
            else:
                for method in methods:
                    self.exact.setdefault((method, route.path), (index, endpoint))

    def find(self, method: str, path: str) -> Found | None:
        """The endpoint and path parameters of the step the router would serve this request with, or None."""
        if path.endswith("\n"):  # the router's `^/path$` also matches `/path\n`: such paths stay its own
            return None
        hit = self.exact.get((method, path))
        for index, regex, convertors, methods, endpoint in self.patterns:
            if hit is not None and index > hit[0]:
                break
            if method in methods and (match := regex.match(path)) is not None:
                return endpoint, {k: convertors[k].convert(v) for k, v in match.groupdict().items()}
        return (hit[1], {}) if hit is not None else None

    def shadowed(self, scope: Scope) -> bool:
        """Whether a route before the steps takes this request first (the router tries them in order)."""
        if scope["path"] in self.shadowing:
            return True
        return bool(self.shadowing_routes) and any(route.matches(scope)[0] is Match.FULL
                                                   for route in self.shadowing_routes)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:  # never matched: never handled
        raise HTTPException(404)


class SteppeApp(FastAPI):
    """FastAPI with the front door for API steps (see the module's docstring)."""

    max_headers: int = 64 * 1024

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            routes = self.router.routes
            if routes and type(table := routes[0]) is StepTable:
                path = scope["path"]
                if not path.startswith(PREFIX) and (found := table.find(scope["method"], path)) is not None \
                        and not table.shadowed(scope) and header_bytes(scope) <= self.max_headers:
                    endpoint, scope["path_params"] = found
                    scope["app"] = self
                    await endpoint(scope, receive, send)
                    return
        await super().__call__(scope, receive, send)
