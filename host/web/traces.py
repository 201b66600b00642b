"""`/__steppe/api/traces`: recorded traces (filter by status, step, flow) and one trace's invocations, with
the count of those past the recorder's per-trace cap (`notRecorded`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..telemetry import InvocationRecorder, TelemetryStore
from .api import json_response
from .query import whole_number


def _limit(request: Request, default: int, cap: int) -> int:
    limit = whole_number(request.query_params.get("limit", ""))
    return default if limit is None else max(1, min(cap, limit))


def trace_routes(store: TelemetryStore, recorder: InvocationRecorder,
                 dead_letters: Callable[[], Awaitable[list[Any]]]) -> list[Route]:
    async def listing(request: Request) -> Response:
        q = request.query_params
        rows = await asyncio.to_thread(store.traces, status=q.get("status") or None, step=q.get("step") or None,
                                       flow=q.get("flow") or None, limit=_limit(request, 200, 5000))
        return json_response(200, rows)

    async def show(request: Request) -> Response:
        trace_id = request.path_params["trace_id"]
        done = await asyncio.to_thread(store.invocations, trace_id=trace_id, limit=20_000)
        not_recorded = await asyncio.to_thread(store.not_recorded, trace_id)
        running: list[dict[str, Any]] = [i.as_dict() for i in recorder.running_in(trace_id)]
        seen = {i["id"] for i in done}
        invocations = done + [r for r in running if r["id"] not in seen]
        if not invocations:
            return json_response(404, {"error": "Not Found", "traceId": trace_id,
                                       "message": "no invocation of this trace is recorded"})
        invocations.sort(key=lambda i: i["start"])
        start = invocations[0]["start"]
        end = max(i["start"] + (i["duration"] or 0) / 1000 for i in invocations)
        dead = [{"id": d.id, "step": d.step, "topic": d.event.topic, "attempts": d.attempts, "error": d.error,
                 "failedAt": d.failed_at} for d in await dead_letters() if d.event.trace_id == trace_id]
        return json_response(200, {"traceId": trace_id, "start": start, "duration": round((end - start) * 1000, 3),
                                   "deadLetters": dead,
                                   "status": "error" if any(i["status"] == "error" for i in invocations)
                                   else "running" if any(i["status"] == "running" for i in invocations) else "ok",
                                   "languages": sorted({i["language"] for i in invocations}),
                                   # past the recorder's cap (telemetry_per_trace): counted, not kept
                                   "notRecorded": not_recorded, "invocations": invocations})

    async def step_invocations(request: Request) -> Response:
        rows = await asyncio.to_thread(store.invocations, step=request.path_params["name"],
                                       limit=_limit(request, 20, 500))
        return json_response(200, [{k: v for k, v in r.items() if k not in ("input", "ops")} for r in rows])

    return [Route("/traces", listing), Route("/traces/{trace_id}", show),
            Route("/steps/{name:path}/invocations", step_invocations)]
