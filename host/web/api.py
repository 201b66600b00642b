"""Serving one API step: read and check the body, call the handler in its runner, shape its answer."""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import Response

from .. import wire
from ..db import as_storage_error, storage_payload
from ..invoker import Invoker, new_trace_id
from ..logs import LogBook
from ..rpc import ConnectionLost, RpcError
from ..runners import RunnerUnavailable
from ..runners.supervisor import InvocationTimeout
from ..steps import Step
from ..telemetry.tracing import upstream
from .limits import json_too_deep
from .responses import as_response

_BAD_HEADER_NAME = re.compile(r'[\x00-\x20\x7f-\uffff()<>@,;:\\"/\[\]?={}]')
_BAD_HEADER_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
RETRY_AFTER = 5  # seconds a 503 asks a client to wait while a step's runner is down, unless its restart is known


class BodyError(Exception):
    def __init__(self, status: int, payload: dict[str, Any]) -> None:
        super().__init__(payload.get("error"))
        self.status, self.payload = status, payload


def json_response(status: int, payload: Any, trace_id: str | None = None,
                  headers: dict[str, str] | None = None) -> Response:
    """A JSON answer; error answers (4xx/5xx) always carry a trace id, in the body and in `x-trace-id`."""
    if status >= 400 and isinstance(payload, dict):
        trace_id = trace_id or payload.get("traceId") or new_trace_id()
        payload = {**payload, "traceId": trace_id}
    if trace_id:
        headers = {**(headers or {}), "x-trace-id": trace_id}
    return Response(orjson.dumps(payload), status, headers=headers, media_type="application/json")


BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})  # methods whose bodySchema applies even to an empty body


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyError(413, {"error": "Payload Too Large", "limit": limit})
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyError(413, {"error": "Payload Too Large", "limit": limit})
        chunks.append(chunk)
    return b"".join(chunks)


def parse_body(raw: bytes, content_type: str, max_depth: int = 512) -> Any:
    if not raw:
        return None
    kind = content_type.split(";")[0].strip().lower()
    if kind in ("", "application/json") or kind.endswith("+json"):
        if json_too_deep(raw, max_depth):
            raise BodyError(400, {"error": "JSON body nested too deeply", "limit": max_depth,
                                  "reason": f"the body nests arrays/objects more than {max_depth} levels "
                                            "deep (max_json_depth)"})
    if kind == "application/x-www-form-urlencoded":
        return _multi(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    if kind.startswith("text/"):
        return raw.decode("utf-8", "replace")
    if kind in ("", "application/json") or kind.endswith("+json"):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            if kind == "":  # no declared type and not JSON: hand it over as text
                return raw.decode("utf-8", "replace")
            raise BodyError(400, {"error": "Invalid JSON body", "reason": f"the body is not valid JSON (it breaks at "
                                  f"line {e.lineno}, column {e.colno}); send a JSON value such as "
                                  '{"key": "value"}, or set content-type to what the body is'}) from None
    return raw.decode("utf-8", "replace")


def _multi(pairs: list[tuple[str, str]]) -> dict[str, str | list[str]]:
    out: dict[str, str | list[str]] = {}
    for key, value in pairs:
        if key in out:
            prev = out[key]
            out[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            out[key] = value
    return out


def to_response(result: Any, trace_id: str) -> Response:
    result = as_response(result)
    status = result.get("status")
    if status is None:
        status = 200
    if isinstance(status, str) and status.strip().isdigit():
        status = int(status)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ValueError(f"the handler returned status {status!r}: an HTTP status is an integer from 100 to 599")
    if not isinstance(raw_headers := result.get("headers") or {}, dict):
        raise TypeError(f"the handler returned headers as {type(raw_headers).__name__}: expected an object")
    headers = {str(k): str(v) for k, v in raw_headers.items()}
    for name, value in headers.items():  # the server would drop the connection without an answer on these
        if not name or _BAD_HEADER_NAME.search(name) or _BAD_HEADER_VALUE.search(value):
            raise ValueError(f"the handler returned an invalid header {name!r}: names are tokens, values have no "
                             "control characters (CR, LF, NUL)")
    headers.setdefault("x-trace-id", trace_id)
    lower = {k.lower() for k in headers}
    if "bodyBase64" in result:
        content, media = base64.b64decode(result["bodyBase64"]), "application/octet-stream"
    elif isinstance(body := result.get("body"), str):
        content, media = body.encode(), "text/plain; charset=utf-8"
    elif body is None and "body" not in result:
        content, media = b"", None
    else:
        content, media = orjson.dumps(body), "application/json"
    if "content-type" in lower:
        media = None
    return Response(content, status, headers=headers, media_type=media)


def api_endpoint(step: Step, invoker: Invoker, logs: LogBook, *, max_body: int, timeout: float,
                 expose_errors: bool, max_depth: int = 512) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        trace_id, parent_span = new_trace_id(), None
        if getattr(invoker.recorder, "tracing", None) is not None and "traceparent" in request.headers:
            trace_id, parent_span = upstream(request.headers["traceparent"]) or (trace_id, None)
        try:
            raw = await read_body(request, max_body)
            body = parse_body(raw, request.headers.get("content-type", ""), max_depth)
            # a GET (HEAD, DELETE, OPTIONS) without a body has nothing to check; Motia never enforced bodySchema
            validator = invoker.validator(step, "bodySchema") if raw or request.method in BODY_METHODS else None
            try:
                errors = validator.errors(body) if validator else []
            except RecursionError:
                raise BodyError(400, {"error": "Request body failed validation", "reason": "the body is nested "
                                      "too deeply to validate against bodySchema"}) from None
            if errors:
                raise BodyError(400, {"error": "Request body failed validation", "errors": errors})
        except BodyError as e:
            return json_response(e.status, e.payload, trace_id)
        req: wire.ApiRequest = {
            "body": body, "headers": {k.lower(): v for k, v in request.headers.items()},
            "pathParams": dict(request.path_params), "queryParams": _multi(request.query_params.multi_items()),
            "rawBody": raw.decode("utf-8", "replace")}
        try:
            result = await invoker.invoke(step, "api", req, trace_id, step.flows, step.handler_timeout or timeout,
                                          parent_span=parent_span)
            return to_response(result, trace_id)
        except InvocationTimeout as e:
            logs.write("error", f"{request.method} {request.url.path}: {e}", step=step.name, trace_id=trace_id)
            return json_response(504, {"error": "Gateway Timeout", "message": str(e), "traceId": trace_id},
                                 trace_id)
        except ConnectionLost as e:
            logs.write("error", f"runner lost during the request: {e.message}", step=step.name, trace_id=trace_id)
            return json_response(502, {"error": "Bad Gateway", "message": "the step's runner stopped during the "
                                       "request; it is being restarted", "traceId": trace_id}, trace_id)
        except RunnerUnavailable as e:
            wait = max(1, math.ceil(e.retry_after or RETRY_AFTER))
            return json_response(503, {"error": "Service Unavailable", "message": str(e), "traceId": trace_id},
                                 trace_id, headers={"retry-after": str(wait)})
        except (RpcError, TypeError, ValueError) as e:
            invoker.log_failure(step, trace_id, e, method=request.method, path=request.url.path)
            if (fault := as_storage_error(e)) is not None:  # the store could not write: 507/503, not 500
                return json_response(fault.status, {**storage_payload(fault), "traceId": trace_id}, trace_id)
            payload = {"error": "Internal Server Error", "traceId": trace_id}
            if expose_errors:
                payload["message"] = getattr(e, "message", None) or str(e)
                payload["type"] = getattr(e, "type", type(e).__name__)
            return json_response(500, payload, trace_id)

    return endpoint
