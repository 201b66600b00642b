"""Routes of steps that did not load: they answer 503 with the load error (dev) instead of a bare 404.

A step whose file failed to load (a missing package, a syntax error) has no config the host could read, so
its route is read from the source text: the first `path: '/...'` (and `method: '...'`) in it, the way every
language's step config writes them. A guess that clashes with a loaded step's route is dropped: a step that
serves always wins.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..steps import HTTP_METHODS, Step, starlette_path
from .api import json_response

# `path: '/x'`, `"path": "/x"`, `path = "/x"`, `:path => '/x'`, `path: "/x"` in TS, Python, Ruby configs
_PATH = re.compile(r"""["':]?\bpath["']?\s*(?::|=>|=)\s*["'](/[^"'\s]*)["']""")
_METHOD = re.compile(r"""["':]?\bmethod["']?\s*(?::|=>|=)\s*["']([A-Za-z]+)["']""")
_TYPE_NOT_API = re.compile(r"""["':]?\btype["']?\s*(?::|=>|=)\s*["'](event|cron|noop)["']""")
RETRY_AFTER = 2  # seconds: dev reload retries the load as soon as the file or the dependencies change


def unloaded_route(step: Step) -> tuple[str | None, str] | None:
    """(method or None for any, route) a step that did not load would serve, if its source says."""
    if step.config.get("path"):  # loaded, but its config is invalid
        return (step.method if step.method in HTTP_METHODS and step.config.get("method") else None), step.route
    try:
        source = step.path.read_text(encoding="utf-8", errors="replace")[:200_000]
    except OSError:
        return None
    if _TYPE_NOT_API.search(source) or not (path := _PATH.search(source)):
        return None
    method = _METHOD.search(source)
    verb = method.group(1).upper() if method else None
    return (verb if verb in HTTP_METHODS else None), path.group(1)


def unloaded_routes(steps: list[Step], served: set[tuple[str, str]], root: Path, *,
                    expose_errors: bool) -> list[Route]:
    """503 routes for the steps that did not load, after the served routes (`served`: (method, route))."""
    routes = []
    for step in steps:
        if step.ok or (found := unloaded_route(step)) is None:
            continue
        method, route = found
        if any(route == r and (method is None or method == m) for m, r in served):
            continue
        endpoint, methods = _endpoint(step, root, expose_errors), [method] if method else list(HTTP_METHODS)
        try:
            routes.append(Route(starlette_path(route), endpoint, methods=methods))
        except (AssertionError, ValueError):
            try:  # a path the router refuses (`/a/:id/:id`): the same path with its parameters renamed apart
                routes.append(Route(_params_apart(starlette_path(route)), endpoint, methods=methods))
            except (AssertionError, ValueError):
                continue
    return routes


def _params_apart(path: str) -> str:
    """`/a/{id}/{id}` as `/a/{p0}/{p1}` (convertors kept): a path the router takes, for the 503 alone."""
    count = itertools.count()
    return re.sub(r"\{[^}:]*(:[^}]*)?\}", lambda m: f"{{p{next(count)}{m.group(1) or ''}}}", path)


def _endpoint(step: Step, root: Path, expose_errors: bool) -> Callable[[Request], Awaitable[Response]]:
    try:
        where = str(step.path.relative_to(root))
    except ValueError:
        where = step.path.name

    async def endpoint(request: Request) -> Response:
        payload: dict[str, str] = {"error": "Service Unavailable"}
        if expose_errors:  # dev: the reason, so the fix is one read away
            payload["message"] = f"the step in {where} did not load; it is retried when the file or the " \
                                 "project's dependencies change"
            payload["loadError"] = step.error or step.unavailable or ""
        return json_response(503, payload, headers={"retry-after": str(RETRY_AFTER)})

    return endpoint
