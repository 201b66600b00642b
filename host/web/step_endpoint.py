"""Serving one API step as a plain ASGI app: read and check the body, call the handler in its runner, send
its answer. Prepared once per step (its settings, its metrics hook); per request it reads the ASGI scope
directly, without Starlette's Request and Response objects (the host's one thread pays for every request)."""

from __future__ import annotations

import math
from typing import Any

from starlette.types import Receive, Scope, Send

from .. import wire
from ..db import as_storage_error, storage_payload
from ..event import NEW_TRACE
from ..headers import request_headers
from ..invoker import Invoker, new_trace_id
from ..logs import LogBook
from ..rpc import ConnectionLost, RpcError
from ..runners import RunnerUnavailable
from ..runners.supervisor import InvocationTimeout
from ..steps import Step
from ..telemetry.metrics import Metrics
from ..telemetry.tracing import upstream
from .api import BODY_METHODS, Answer, BodyError, crash_response, handler_answer, json_response, parse_body
from .query import form_params, whole_number

RETRY_AFTER = 5  # seconds a 503 asks a client to wait while a step's runner is down, unless its restart is known


class ClientGone(Exception):
    """The client closed the connection before its request body arrived: there is no one to answer."""


class StepEndpoint:
    """The ASGI app of one API step. The front door (host/web/front.py) calls it with `path_params` in the
    scope; so does Starlette's router on the paths the front door leaves to it."""

    def __init__(self, step: Step, invoker: Invoker, logs: LogBook, *, max_body: int, timeout: float,
                 expose_errors: bool, max_depth: int = 512, metrics: Metrics | None = None) -> None:
        self.step, self.invoker, self.logs, self.metrics = step, invoker, logs, metrics
        self.max_body, self.max_depth, self.expose_errors = max_body, max_depth, expose_errors
        self.timeout = step.handler_timeout or timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            status, headers, body = await self.answer(scope, receive)
        except ClientGone:
            return
        except Exception as e:  # a bug: answered and logged as the app's 500 handler does, once
            status, headers, body = _answer(crash_response(self.logs, scope["method"], scope["path"], e))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        if self.metrics is not None:
            self.metrics.request(self.step.name, scope["method"], status)

    async def answer(self, scope: Scope, receive: Receive) -> Answer:
        step, invoker = self.step, self.invoker
        headers = request_headers(scope["headers"])
        trace_id, parent_span = new_trace_id(), None
        if "traceparent" in headers and getattr(invoker.recorder, "tracing", None) is not None:
            trace_id, parent_span = upstream(headers["traceparent"]) or (trace_id, None)
        method = scope["method"]
        try:
            raw = await self.read_body(headers, receive)
            body = parse_body(raw, headers.get("content-type", ""), self.max_depth)
            # a GET (HEAD, DELETE, OPTIONS) without a body has nothing to check; Motia never enforced bodySchema
            validator = invoker.validator(step, "bodySchema") if raw or method in BODY_METHODS else None
            try:
                errors = validator.errors(body) if validator else []
            except RecursionError:
                raise BodyError(400, {"error": "Request body failed validation", "reason": "the body is nested "
                                      "too deeply to validate against bodySchema"}) from None
            if errors:
                raise BodyError(400, {"error": "Request body failed validation", "errors": errors})
        except BodyError as e:
            return _answer(json_response(e.status, e.payload, trace_id))
        query = scope.get("query_string", b"")
        req: wire.ApiRequest = {
            "body": body, "headers": headers, "pathParams": dict(scope.get("path_params", {})),
            "queryParams": form_params(query.decode("latin-1")) if query else {},
            "rawBody": raw.decode("utf-8", "replace")}
        try:
            result = await invoker.invoke(step, "api", req, trace_id, step.flows, self.timeout,
                                          parent_span=parent_span, sampled=None if parent_span else NEW_TRACE)
            return handler_answer(result, trace_id)
        except Exception as e:
            return _answer(self.failure(e, method, scope["path"], trace_id))

    async def read_body(self, headers: dict[str, str], receive: Receive) -> bytes:
        limit = self.max_body
        declared = headers.get("content-length")
        if declared and (size := whole_number(declared)) is not None and size > limit:
            raise BodyError(413, {"error": "Payload Too Large", "limit": limit})
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # http.disconnect
                raise ClientGone()
            chunk = message.get("body", b"")
            if not message.get("more_body", False) and not chunks:
                if len(chunk) > limit:
                    raise BodyError(413, {"error": "Payload Too Large", "limit": limit})
                return chunk  # the whole body in one message: the common case
            size += len(chunk)
            if size > limit:
                raise BodyError(413, {"error": "Payload Too Large", "limit": limit})
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def failure(self, e: Exception, method: str, path: str, trace_id: str) -> Any:
        """The answer to an invocation that raised: 504, 502, 503, 507 or 500 (errors the host does not
        expect propagate: the app's 500 handler answers and logs them)."""
        step, logs = self.step, self.logs
        if isinstance(e, InvocationTimeout):
            logs.write("error", f"{method} {path}: {e}", step=step.name, trace_id=trace_id)
            return json_response(504, {"error": "Gateway Timeout", "message": str(e), "traceId": trace_id},
                                 trace_id)
        if isinstance(e, ConnectionLost):
            logs.write("error", f"runner lost during the request: {e.message}", step=step.name, trace_id=trace_id)
            return json_response(502, {"error": "Bad Gateway", "message": "the step's runner stopped during the "
                                       "request; it is being restarted", "traceId": trace_id}, trace_id)
        if isinstance(e, RunnerUnavailable):
            wait = max(1, math.ceil(e.retry_after or RETRY_AFTER))
            return json_response(503, {"error": "Service Unavailable", "message": str(e), "traceId": trace_id},
                                 trace_id, headers={"retry-after": str(wait)})
        if not isinstance(e, (RpcError, TypeError, ValueError)):
            raise e
        self.invoker.log_failure(step, trace_id, e, method=method, path=path)
        if (fault := as_storage_error(e)) is not None:  # the store could not write: 507/503, not 500
            return json_response(fault.status, {**storage_payload(fault), "traceId": trace_id}, trace_id)
        payload = {"error": "Internal Server Error", "traceId": trace_id}
        if self.expose_errors:
            payload["message"] = getattr(e, "message", None) or str(e)
            payload["type"] = getattr(e, "type", type(e).__name__)
        return json_response(500, payload, trace_id)


def _answer(response: Any) -> Answer:
    return response.status_code, response.raw_headers, response.body
