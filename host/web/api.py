"""What serving an API step needs around the handler: JSON answers, the request body parsed by its type, the
handler's answer checked and turned into an HTTP response (host/web/step_endpoint.py serves the step)."""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ..db import as_storage_error, storage_payload
from ..invoker import new_trace_id
from ..logs import LogBook
from ..schema_messages import kind_of
from .limits import json_too_deep
from .query import form_params, whole_number
from .responses import as_response

_BAD_HEADER_NAME = re.compile(r'[\x00-\x20\x7f-\uffff()<>@,;:\\"/\[\]?={}]')
_BAD_HEADER_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def raw_segments(request: Request, skip: int, most: int) -> list[str]:
    """The path's segments after its first `skip` (e.g. `__steppe`, `state`), read from the raw path and each
    decoded on its own, so that an encoded slash (%2F) stays inside its segment: a handler may name a state
    group `a/b`, which the decoded path would split. At most `most` segments; the last keeps any further
    slashes (a key may hold them)."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    parts = raw.split(b"?", 1)[0].split(b"/", skip + most)[skip + 1:]
    return [unquote_to_bytes(part).decode("utf-8", "replace") for part in parts]


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
    if trace_id and trace_id.isascii() and trace_id.isprintable():  # a requested id echoed back may be any text
        headers = {**(headers or {}), "x-trace-id": trace_id}
    return Response(orjson.dumps(payload), status, headers=headers, media_type="application/json")


def crash_response(logs: LogBook, method: str, path: str, exc: BaseException) -> Response:
    """The 500 for an error nothing else answered: logged, with a trace id the client is given. A storage
    fault no route caught (Redis out of memory or not answering) is the 507 or 503 it stands for."""
    trace_id = new_trace_id()
    if (fault := as_storage_error(exc)) is not None:
        logs.write("error", f"{method} {path}: {fault}", trace_id=trace_id)
        return json_response(fault.status, storage_payload(fault), trace_id)
    logs.write("error", f"{method} {path} failed: {type(exc).__name__}: {exc}", trace_id=trace_id)
    return json_response(500, {"error": "Internal Server Error"}, trace_id)


BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})  # methods whose bodySchema applies even to an empty body


async def read_body(request: Request, limit: int) -> bytes:
    """An admin request's body, up to `limit` bytes (413 past it)."""
    declared = request.headers.get("content-length")
    if declared and (size := whole_number(declared)) is not None and size > limit:
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
        return form_params(raw.decode("utf-8", "replace"))
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


Answer = tuple[int, list[tuple[bytes, bytes]], bytes]  # status, raw headers, body: what the ASGI messages carry


def _header_texts(name: Any, value: Any) -> list[str]:
    """A handler's header value as the lines Motia (Express's `res.set`) sent: a list gives one line per item
    (several Set-Cookie), numbers and booleans as JavaScript writes them, null none."""
    if isinstance(value, list):
        return [text for item in value if (text := _header_text(name, item)) is not None]
    text = _header_text(name, value)
    return [] if text is None else [text]


def _header_text(name: Any, value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    raise TypeError(f"the handler returned header {name!r} as {kind_of(value)}: a header value is text, a "
                    "number, a boolean or a list of them")


# framing and connection headers: the host's own (uvicorn's), never a handler's
_FRAMING = frozenset((b"content-length", b"transfer-encoding", b"connection", b"keep-alive", b"upgrade"))


def handler_answer(result: Any, trace_id: str) -> Answer:
    """A handler's return value as the HTTP answer (docs/steps.md); raises ValueError/TypeError for one that
    cannot be sent. Headers follow Starlette's Response rules: names lower-cased, content-length unless the
    status has no body (a handler's framing headers are not sent), the content type unless the handler set it."""
    result = as_response(result)
    status = result.get("status")
    if status is None:
        status = 200
    if isinstance(status, str) and (number := whole_number(status.strip())) is not None:
        status = number
    if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
        raise ValueError(f"the handler returned status {status!r}: an answer's HTTP status is an integer from 200 "
                         "to 599 (1xx are not final answers)")
    if not isinstance(raw_headers := result.get("headers") or {}, dict):
        raise TypeError(f"the handler returned headers as {kind_of(raw_headers)}: expected an object")
    headers = [(str(k), text) for k, v in raw_headers.items() for text in _header_texts(k, v)]
    for name, value in headers:  # the server would drop the connection without an answer on these
        if not name or _BAD_HEADER_NAME.search(name) or _BAD_HEADER_VALUE.search(value):
            raise ValueError(f"the handler returned an invalid header {name!r}: names are tokens, values have no "
                             "control characters (CR, LF, NUL)")
    if "bodyBase64" in result:
        encoded = result["bodyBase64"]
        try:  # validate: characters outside the alphabet are an error, not skipped
            content = base64.b64decode(encoded, validate=True) if isinstance(encoded, str) else None
        except ValueError as e:
            raise ValueError(f"the handler returned a bodyBase64 that is not base64: {e}") from None
        if content is None:
            raise TypeError(f"the handler returned bodyBase64 as {kind_of(encoded)}: expected base64 text")
        media = b"application/octet-stream"
    elif isinstance(body := result.get("body"), str):
        content, media = body.encode(), b"text/plain; charset=utf-8"
    elif body is None and "body" not in result:
        content, media = b"", None
    else:
        content, media = orjson.dumps(body), b"application/json"
    if status in (204, 304):  # no body by HTTP; sending one made the server drop the connection
        content, media = b"", None
    # latin-1 as HTTP heads are
    try:
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    except UnicodeEncodeError:
        name = next(k for k, v in headers if any(ord(c) > 255 for c in k + v))
        raise ValueError(f"the handler returned header {name!r} with a character HTTP headers cannot carry (they "
                         "are latin-1): percent-encode it, or put it in the body") from None
    names = {k for k, _ in raw}
    if names & _FRAMING:  # the host frames the body itself: a handler's length that did not match cut the answer
        raw = [(k, v) for k, v in raw if k not in _FRAMING]
        names -= _FRAMING
    if b"x-trace-id" not in names:
        raw.append((b"x-trace-id", trace_id.encode()))
    if status not in (204, 304):
        raw.append((b"content-length", str(len(content)).encode()))
    if media is not None and b"content-type" not in names:
        raw.append((b"content-type", media))
    return status, raw, content
