"""`/__steppe/api/runners`: per language: pid, version, uptime, restarts, RSS, in-flight calls, last error."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .api import json_response
from .probes import runner_row


def workbench_row(language: str, sup: Any, last_error: tuple[float, str] | None) -> dict[str, Any]:
    """The admin view's row (probes.runner_row: pid of the live process, RSS, uptime) in the Workbench's
    shape, with the error the recorder saw last."""
    row = runner_row(sup)
    return {"language": language, "pid": row["pid"], "version": row["runnerVersion"], "uptime": row["uptime"],
            "restarts": row["restarts"], "rss": row["rss"], "inFlight": row["inFlight"], "unhealthy": sup.unhealthy,
            "files": len(sup.files),
            "lastError": {"at": last_error[0], "message": last_error[1]} if last_error else None}


def runner_routes(supervisors: dict[str, Any], last_errors: dict[str, tuple[float, str]]) -> list[Route]:
    async def listing(request: Request) -> Response:
        return json_response(200, [workbench_row(lang, sup, last_errors.get(lang))
                                   for lang, sup in sorted(supervisors.items())])

    return [Route("/runners", listing)]
