"""The OpenAPI 3.1 document describing every API step, built from the step configs."""

from __future__ import annotations

import re
from typing import Any

from .. import __version__
from ..steps import Step, starlette_path

# statuses the host itself may answer on any step route, as JSON {error, traceId, ...} (docs/limits.md)
HOST_ANSWERS = {
    "404": "No route matches the path, or the handler answered 404 (e.g. what it looks up does not exist)",
    "405": "The path exists for other methods (see the Allow header)",
    "413": "The body is larger than max_body",
    "431": "The request headers total more than max_headers",
    "500": "The handler failed or returned an invalid answer (the reason is in the step's log)",
    "502": "The step's runner stopped during the request",
    "503": "The step's runner is down (see Retry-After)",
    "504": "The handler ran longer than its timeout",
}


def openapi_document(steps: list[Step], title: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for step in sorted(steps, key=lambda s: (s.route, s.method)):
        route = starlette_path(step.route)
        op: dict[str, Any] = {"operationId": step.name, "summary": step.config.get("description") or step.name}
        if step.flows:
            op["tags"] = step.flows
        params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                  for n in re.findall(r"{(\w+)}", route)]
        for q in step.config.get("queryParams") or []:
            if isinstance(q, dict) and q.get("name"):
                params.append({"name": q["name"], "in": "query", "required": False, "schema": {"type": "string"},
                               **({"description": q["description"]} if q.get("description") else {})})
        if params:
            op["parameters"] = params
        if isinstance(body := step.config.get("bodySchema"), dict):
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
        responses = step.config.get("responseSchema")
        if isinstance(responses, dict) and responses:
            op["responses"] = {str(code): {"description": f"{code} response",
                                           "content": {"application/json": {"schema": schema}}}
                               for code, schema in responses.items()}
        else:
            op["responses"] = {"200": {"description": "OK"}}
        if isinstance(body, dict):
            bad = ("The body is not valid JSON, nests deeper than max_json_depth, or failed bodySchema (errors "
                   "listed)")
        else:  # nothing is validated: only a body sent as JSON that does not parse is refused
            bad = "A body sent as JSON (content-type application/json) is not valid JSON or nests deeper than " \
                  "max_json_depth; the step has no bodySchema, so its fields are not checked"
        op["responses"].setdefault("400", {"description": f"{bad}; or the handler answered 400"})
        for code, description in HOST_ANSWERS.items():
            op["responses"].setdefault(code, {"description": description})
        paths.setdefault(route, {})[step.method.lower()] = op
    return {"openapi": "3.1.0", "info": {"title": title, "version": __version__}, "paths": paths}
