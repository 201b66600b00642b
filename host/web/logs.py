"""`/__steppe/api/logs`: stored log records, filtered by level, step, flow, trace id and text; pages go
back with `before` (the smallest `id` of the page before)."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..telemetry import TelemetryStore
from .api import json_response
from .query import whole_number


def log_routes(store: TelemetryStore) -> list[Route]:
    async def listing(request: Request) -> Response:
        q = request.query_params
        limit, before = whole_number(q.get("limit", "")), whole_number(q.get("before", ""))
        rows = await asyncio.to_thread(
            store.logs, level=q.get("level") or None, step=q.get("step") or None, flow=q.get("flow") or None,
            trace_id=q.get("traceId") or None, text=q.get("q") or None,
            before=before, limit=1000 if limit is None else max(1, min(100_000, limit)))
        return json_response(200, rows)

    return [Route("/logs", listing)]
