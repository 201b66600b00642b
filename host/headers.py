"""Request headers as handlers see them: one string per lower-cased name, repeated headers merged as Node's
`IncomingMessage.headers` (which Motia handlers read) merges them, so none is lost: `cookie` lines joined
with "; ", the headers that can only hold one value keeping the first, every other joined with ", "."""

from __future__ import annotations

from collections.abc import Iterable

# Node keeps the first of these when repeated (its `message.headers` documentation)
SINGLE = frozenset({"age", "authorization", "content-length", "content-type", "etag", "expires", "from", "host",
                    "if-modified-since", "if-unmodified-since", "last-modified", "location", "max-forwards",
                    "proxy-authorization", "referer", "retry-after", "server", "user-agent"})


def request_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """ASGI's raw header pairs (names lower-case already) as handlers get them."""
    headers: dict[str, str] = {}
    for name, value in raw:
        key, text = name.decode("latin-1"), value.decode("latin-1")
        if key not in headers:
            headers[key] = text
        elif key == "cookie":
            headers[key] += "; " + text
        elif key not in SINGLE:
            headers[key] += ", " + text
    return headers
