"""The probes' answers for each health state, on a real Starlette app built from probe_routes with a real
Health registry (the states other parts report are hard to cause on purpose in a whole host)."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette

from steppe.health import Health
from steppe.web.probes import probe_routes


class Probes:
    def __init__(self) -> None:
        self.health, self.serving = Health(), True
        app = Starlette(routes=probe_routes(self.health, lambda: self.serving))
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1")

    async def health_(self) -> httpx.Response:
        return await self.http.get("/__steppe/health")

    async def ready(self) -> httpx.Response:
        return await self.http.get("/__steppe/ready")


async def test_health_is_200_with_reasons_and_ready_503_only_when_failing_or_not_serving():
    p = Probes()
    assert (await p.health_()).json() == {"status": "ok", "reasons": []}
    assert (await p.ready()).status_code == 200

    p.health.report("runner.python", "degraded", "the python runner is restarting")
    r = await p.ready()
    assert r.status_code == 200 and r.json()["status"] == "degraded"

    p.health.report("runner.python", "failing", "the python runner cannot start")
    health, ready = await p.health_(), await p.ready()
    assert health.status_code == 200 and health.json()["status"] == "failing"
    assert ready.status_code == 503 and ready.json()["reasons"][0]["reason"] == "the python runner cannot start"

    p.health.clear("runner.python")
    p.serving = False  # starting or stopping
    assert (await p.ready()).status_code == 503
    assert (await p.health_()).status_code == 200


async def test_a_degraded_backlog_keeps_ready_200():
    p = Probes()
    p.health.report("queue:backlog", "degraded", "the oldest due delivery has waited 75s")
    body = (await p.health_()).json()
    assert body["status"] == "degraded" and body["reasons"][0]["component"] == "queue:backlog"
    assert (await p.ready()).status_code == 200  # a backlog is no reason to stop sending traffic
    p.health.clear("queue:backlog")
    assert (await p.health_()).json() == {"status": "ok", "reasons": []}
