"""`/__steppe/api/cron`: every cron step with its expression, next run times and last runs, and Run now."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..invoker import new_trace_id
from ..telemetry import TelemetryStore
from .api import json_response


def next_runs(expr: str, count: int = 5) -> list[float]:
    from croniter import croniter  # already loaded by the cron step's validation (steps.py): no cost here

    schedule = croniter(expr, datetime.now().astimezone(), second_at_beginning=len(expr.split()) == 6)
    return [schedule.get_next(float) for _ in range(count)]


def cron_routes(project: Any, tick: Callable[[Any, str], Coroutine[Any, Any, None]], store: TelemetryStore | None,
                skipped: dict[str, int]) -> list[Route]:
    running: set[asyncio.Task[None]] = set()

    async def listing(request: Request) -> Response:
        rows = []
        for step in project.ok_steps("cron"):
            expr = str(step.config["cron"])
            last = await asyncio.to_thread(store.invocations, step=step.name, limit=5) if store else []
            rows.append({"name": step.name, "cron": expr, "language": step.language, "path": project.rel(step.path),
                         "flows": step.flows, "next": next_runs(expr), "skipped": skipped.get(step.name, 0),
                         "last": [{k: r[k] for k in ("traceId", "start", "duration", "status", "error", "trigger")}
                                  for r in reversed(last)]})
        return json_response(200, rows)

    async def run_now(request: Request) -> Response:
        step = project.step_named(request.path_params["name"])
        if step is None or step.type != "cron":
            return json_response(404, {"error": "Not Found", "message": "no loaded cron step has this name"})
        trace_id = new_trace_id()
        task = asyncio.get_running_loop().create_task(tick(step, trace_id))
        running.add(task)
        task.add_done_callback(running.discard)
        return json_response(202, {"step": step.name, "traceId": trace_id})

    return [Route("/cron", listing),
            Route("/cron/{name:path}/run", run_now, methods=["POST"])]
