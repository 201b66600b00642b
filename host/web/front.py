"""The app's front door: an API step's request goes straight to its endpoint, and so does a probe
(/__steppe/health, /__steppe/ready); everything else (the admin API and the Workbench under /__steppe/, 404s
and 405s, unloaded steps, public/ files, the stream socket) goes through the full app, FastAPI's middleware
and router (host/web/app.py), which is imported and built on the first request that needs it.

Why: the full stack costs the host's one thread about as much per request as the step's own work (four
middleware layers, then the router tries every admin and Workbench route, each a regex, before the step
routes). The front door answers the same: it takes only requests the router would have sent to the same
step endpoint (the first route in the router's order that matches path and method), with headers within
`max_headers` (HeaderLimit's 431 stays in the stack), off /__steppe/ (the guard's business), and not shadowed
by an earlier route outside /__steppe/. A probe is taken when its route is the first one at its path and
answers the method (the guard lets probes pass unchecked; HeaderLimit's 431 stays in the full app).

Why lazily: FastAPI and pydantic are a third of the host's import time and ~16 MB of an idle host's memory,
and a host that only serves steps and answers probes never needs them.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match, NoMatchFound, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..logs import LogBook
from .api import crash_response
from .guard import PREFIX, PUBLIC
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
        # the open probes, each where it is the first route at its path (no earlier route takes the path)
        self.probes: dict[str, Route] = {}
        for public in PUBLIC:
            first = next((r for r in front if r.matches({"type": "http", "path": public, "method": "GET",
                                                          "root_path": ""})[0] is not Match.NONE), None)
            if isinstance(first, Route) and first.path == public:
                self.probes[public] = first
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


class FrontDoor:
    """The ASGI app the HTTP server runs (see the module's docstring). `routes` is the router's list, shared
    with the full app once it exists (a dev reload replaces its contents in place); `build` makes the full app
    on that list: it runs in a thread (its imports take a while) while the front door keeps serving steps."""

    def __init__(self, build: Callable[[list[BaseRoute]], ASGIApp], logs: LogBook, max_headers: int) -> None:
        self.routes: list[BaseRoute] = []
        self.logs, self.max_headers = logs, max_headers
        self._build = build
        self._full: ASGIApp | None = None
        self._building: asyncio.Future[ASGIApp] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            routes = self.routes
            if routes and type(table := routes[0]) is StepTable and header_bytes(scope) <= self.max_headers:
                path = scope["path"]
                if not path.startswith(PREFIX):
                    if (found := table.find(scope["method"], path)) is not None and not table.shadowed(scope):
                        endpoint, scope["path_params"] = found
                        scope["app"] = self
                        await endpoint(scope, receive, send)
                        return
                elif (probe := table.probes.get(path)) is not None:
                    match, child = probe.matches(scope)
                    if match is Match.FULL:
                        scope.update(child)
                        scope["app"] = self
                        await self._answer_probe(probe, scope, receive, send)
                        return
        await (self._full or await self.full_app())(scope, receive, send)

    async def _answer_probe(self, probe: Route, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await probe.handle(scope, receive, send)
        except Exception as e:  # as the full app's 500 handler answers (a probe only reads the health registry)
            await crash_response(self.logs, scope["method"], scope["path"], e)(scope, receive, send)

    async def full_app(self) -> ASGIApp:
        """The full app, built by the first caller; the others wait for the same build (a failed build is
        tried again by the next request)."""
        if self._full is not None:
            return self._full
        if self._building is None:
            self._building = asyncio.ensure_future(self._make())
        return await asyncio.shield(self._building)  # a caller that goes away does not cancel the build

    def build_soon(self) -> None:
        """Start building the full app now, in the background (dev mode: the Workbench is about to be opened)."""
        if self._full is None and self._building is None:
            self._building = asyncio.ensure_future(self._make())
            self._building.add_done_callback(lambda f: f.cancelled() or f.exception())  # a failure: retried later

    async def _make(self) -> ASGIApp:
        started = time.perf_counter()
        try:
            self._full = await asyncio.to_thread(self._build, self.routes)
        except BaseException as e:
            self._building = None
            if isinstance(e, Exception):
                self.logs.write("error", f"could not build the full app: {type(e).__name__}: {e}")
            raise
        self.logs.write("debug", f"built the full app (FastAPI: admin API, Workbench, error answers) in "
                        f"{(time.perf_counter() - started) * 1000:.0f} ms")
        return self._full
