"""Limits checked at the HTTP edge before anything is parsed: total request header size, JSON nesting."""

from __future__ import annotations

import re

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from ..event import new_id

# a JSON string (with escapes) or one bracket: strings are skipped whole so brackets inside them don't count
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def json_too_deep(raw: bytes, limit: int) -> bool:
    """Whether the JSON text `raw` nests arrays/objects deeper than `limit` (checked before parsing, since
    parsers and encoders fail on deep input with recursion errors)."""
    if raw.count(b"[") + raw.count(b"{") <= limit:  # the common case: cannot be deeper than its bracket count
        return False
    depth = 0
    for m in _TOKENS.finditer(raw):
        token = m.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif token in (b"]", b"}"):
            depth -= 1
    return False


def header_bytes(scope: Scope) -> int:
    """Request headers in all, counted as on the wire: `name: value\\r\\n` each."""
    return sum(len(k) + len(v) + 4 for k, v in scope.get("headers", ()))


class HeaderLimit:
    """ASGI middleware: requests whose headers total more than `limit` bytes get a JSON 431."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and header_bytes(scope) > self.limit:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1009, "reason": "request headers too large"})
                return
            trace_id = new_id()
            body = orjson.dumps({"error": "Request Header Fields Too Large", "limit": self.limit,
                                 "reason": f"request headers total more than {self.limit} bytes (max_headers)",
                                 "traceId": trace_id})
            await send({"type": "http.response.start", "status": 431,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode()), (b"x-trace-id", trace_id.encode()),
                                    (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)
