"""`/__steppe/api/runners`: per language: pid, version, uptime, restarts, RSS, in-flight calls, last error."""

from __future__ import annotations

import time
from typing import Any

import psutil
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .api import json_response


def runner_row(language: str, sup: Any, last_error: tuple[float, str] | None) -> dict[str, Any]:
    process = sup.process
    pid = process.pid if process and process.proc and process.proc.returncode is None else None
    rss = uptime = None
    if pid:
        try:
            p = psutil.Process(pid)
            rss, uptime = p.memory_info().rss, round(time.time() - p.create_time(), 1)
        except psutil.Error:
            pass
    info = (process.info if process else None) or {}
    return {"language": language, "pid": pid, "version": info.get("runnerVersion"), "uptime": uptime,
            "restarts": sup.restarts, "rss": rss, "inFlight": len(sup.invocations), "unhealthy": sup.unhealthy,
            "files": len(sup.files),
            "lastError": {"at": last_error[0], "message": last_error[1]} if last_error else None}


def runner_routes(supervisors: dict[str, Any], last_errors: dict[str, tuple[float, str]]) -> list[Route]:
    async def listing(request: Request) -> Response:
        return json_response(200, [runner_row(lang, sup, last_errors.get(lang))
                                   for lang, sup in sorted(supervisors.items())])

    return [Route("/runners", listing)]
