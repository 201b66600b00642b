"""The Workbench: its page at `/__steppe/ui/` (built assets shipped in `steppe/static/workbench/`), the
overview and live feed it reads, and its API resources, each from its own module with only the parts of
the host it needs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route

from .. import __version__
from .api import json_response
from .cron import cron_routes
from .events import event_routes
from .flows import flow_routes
from .logs import log_routes
from .runners import runner_routes
from .state import state_routes
from .streams import stream_routes
from .traces import trace_routes

if TYPE_CHECKING:
    from .ports import WebHost

UI = Path(__file__).resolve().parent.parent / "static" / "workbench"
IMMUTABLE = {"cache-control": "public, max-age=31536000, immutable"}  # assets have hashed names
NO_CACHE = {"cache-control": "no-cache"}


def ui_routes(root: Path) -> list[BaseRoute]:
    """The page and its assets, relative to /__steppe/ui."""
    index = root / "index.html"

    async def page(request: Request) -> Response:
        if not index.exists():
            return json_response(404, {"error": "Not Found", "message": "this install has no built Workbench "
                                       "(run `npm run build` in workbench/)"})
        return FileResponse(index, media_type="text/html", headers=NO_CACHE)

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        path = (root / "assets" / name).resolve()
        if "/" in name or path.parent != (root / "assets").resolve() or not path.is_file():
            return json_response(404, {"error": "Not Found", "path": request.url.path})
        return FileResponse(path, headers=IMMUTABLE)

    return [Route("/", page), Route("/assets/{name}", asset)]


def live_route(feed: Any, status: Callable[[], dict[str, Any]]) -> Route:
    async def live(request: Request) -> Response:
        queue = feed.listen()

        async def events() -> AsyncIterator[bytes]:
            # news as it comes (what is waiting goes in one write), and every second a tick with the
            # in-flight count, the finished-invocation counter and the health status
            try:
                yield b"retry: 1000\n\n"
                next_tick = time.monotonic()
                while True:
                    try:
                        chunks = [await asyncio.wait_for(queue.get(), max(0.0, next_tick - time.monotonic()))]
                        while not queue.empty() and len(chunks) < 500:
                            chunks.append(queue.get_nowait())
                        if feed.END in chunks:
                            return
                        yield b"".join(chunks)
                    except TimeoutError:
                        pass
                    if time.monotonic() >= next_tick:
                        next_tick = time.monotonic() + 1.0
                        yield b"event: tick\ndata: " + orjson.dumps(status()) + b"\n\n"
            finally:
                feed.leave(queue)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"cache-control": "no-cache", "x-accel-buffering": "no"})

    return Route("/live", live)


def workbench_routes(host: WebHost) -> list[BaseRoute]:
    s = host.settings
    if not s.workbench:
        return []
    t = host.telemetry

    def in_flight() -> int:
        return t.recorder.in_flight() if t else host.worker.busy()

    async def overview(request: Request) -> Response:
        return json_response(200, {"project": s.root.name, "mode": s.mode, "version": __version__,
                                   "health": host.health.as_dict(), "inFlight": in_flight(),
                                   "telemetry": t is not None, "runners": sorted(host.project.supervisors),
                                   "tracesSkipped": t.recorder.skipped if t else 0})

    api: list[BaseRoute] = [
        Route("/overview", overview),
        *flow_routes(host.project, t.recorder.stream_writers if t else set()),
        *state_routes(host.state, t.feed.publish if t else lambda k, d: None),
        *stream_routes(host.project, host.streams, host.stream_store), *event_routes(host.bus, host.calls.publish),
        *cron_routes(host.project, host.invoker.tick, t.store if t else None, host.cron.skipped),
        *runner_routes(host.project.supervisors, t.recorder.last_error if t else {})]
    if t:
        api += [*trace_routes(t.store, t.recorder, host.queue.dead), *log_routes(t.store),
                live_route(t.feed, lambda: {"inFlight": in_flight(), "finished": t.recorder.finished,
                                            "tracesSkipped": t.recorder.skipped, "health": host.health.status})]
    # two mounts, not thirty routes: Starlette tries routes in order, and these come before the steps'
    routes: list[BaseRoute] = [Mount("/__steppe/api", routes=api), Mount("/__steppe/ui", routes=ui_routes(UI))]
    if not (s.root / "public" / "index.html").is_file():  # a project without its own home page opens here
        routes.append(Route("/", lambda r: RedirectResponse("/__steppe/ui/", 307)))
    return routes
