"""The probes `/__steppe/health` and `/__steppe/ready` (open: status and reasons only, no pids, paths or
payloads) and the admin-only `/__steppe/runners` with each runner's process details."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..health import Health
from .api import json_response


def probe_routes(health: Health, serving: Callable[[], bool]) -> list[Route]:
    """`serving()` is true once the host has started and until it begins to stop. The probes only read
    `health`: the parts of the host report into it (the queue backlog comes from the storage watch), so a
    probe costs no store query however often a load balancer asks."""

    async def health_probe(request: Request) -> Response:
        return json_response(200, health.as_dict())

    async def ready_probe(request: Request) -> Response:
        report = health.as_dict()
        if not serving():
            report = {"status": "failing", "reasons": [{"component": "host", "status": "failing",
                                                        "reason": "the host is starting or stopping"}]}
        ok = report["status"] != "failing"
        return Response(orjson.dumps(report), 200 if ok else 503, media_type="application/json")

    return [Route("/__steppe/health", health_probe), Route("/__steppe/ready", ready_probe)]


def runner_row(supervisor: Any) -> dict[str, Any]:
    process = supervisor.process
    pid = getattr(process, "pid", None) if process is not None else None
    info = getattr(process, "info", None) or {}
    row: dict[str, Any] = {"pid": pid, "runnerVersion": info.get("runnerVersion") if isinstance(info, dict) else None,
                           "restarts": supervisor.restarts, "inFlight": len(supervisor.invocations),
                           "unhealthy": supervisor.unhealthy, "lastError": supervisor.unhealthy,
                           "uptime": None, "rss": None}
    if pid is not None:
        import psutil  # here: only the admin view needs it, and an idle host need not carry it (~1 MB)

        try:
            p = psutil.Process(pid)
            with p.oneshot():
                row["uptime"] = round(time.time() - p.create_time(), 3)
                row["rss"] = p.memory_info().rss
        except (psutil.Error, OSError):
            pass
    return row


def runners_route(supervisors: Callable[[], Mapping[str, Any]], counts: Callable[[], Awaitable[dict[str, int]]],
                  busy: Callable[[], int]) -> Route:
    """Admin only (the guard sees to it): what the probes leave out, for the CLI and the Workbench."""

    async def runners(request: Request) -> Response:
        return json_response(200, {"runners": {lang: runner_row(s) for lang, s in sorted(supervisors().items())},
                                   "queue": await counts(), "inFlight": busy()})

    return Route("/__steppe/runners", runners)
