"""`/__steppe/metrics`: the Prometheus text format (under /__steppe/, so `start` asks for the admin token)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..telemetry.metrics import CONTENT_TYPE, Metrics


async def current_figures(host: Any) -> dict[str, Any]:
    """What the gauges show, read when Prometheus scrapes: the queue, the runners, the stream sockets."""
    now: dict[str, Any] = {"websocket_clients": host.hub.sockets}
    if (recorder := host.invoker.recorder) is not None:
        now["in_flight"] = recorder.in_flight()
    try:
        now["queue"] = await host.queue.counts()
        now["oldest_due"] = await host.queue.oldest_due(list(host.worker.policies))
    except Exception:  # a store that cannot answer now: the scrape still has the rest (health says why)
        pass
    now["runners"] = {language: (sup.restarts, sup.process is not None and sup.down is None)
                      for language, sup in host.project.supervisors.items()}
    return now


def metrics_routes(host: Any, metrics: Metrics) -> list[Route]:
    async def scrape(request: Request) -> Response:
        metrics.now = await current_figures(host)
        return Response(metrics.render(), 200, media_type=CONTENT_TYPE)

    return [Route("/__steppe/metrics", scrape)]
