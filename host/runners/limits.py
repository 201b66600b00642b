"""The start-up check that no request can produce a protocol message longer than the runners accept.

Every limit the host forwards to a runner (max_body, max_headers, max_event) bounds a message it sends;
`max_line` is the line limit both sides of the protocol enforce (runners learn it from STEPPE_MAX_LINE and
the `initialize` params). The bounds below are worst cases of JSON encoding, so a request that passes the
HTTP edge's limits can never be refused, or crash a runner, for its size.
"""

from __future__ import annotations

from typing import Protocol

ENVELOPE = 64 * 1024  # the invoke envelope: path, step, trace id, flows, path and query params, JSON syntax
ESCAPED = 6  # one byte of raw text can become six in a JSON string (a control byte as \u00XX)
REENCODED = 5  # parsed JSON re-encoded can grow, e.g. the number 9e15 becomes 9000000000000000.0


class Limits(Protocol):
    max_body: int
    max_headers: int
    max_event: int
    max_line: int


class LimitError(ValueError):
    """The limits in the settings would let a request produce a message the runners refuse."""


def largest_api_message(s: Limits) -> int:
    # an API invoke carries the body twice (parsed, and as rawBody text) and every header
    return (ESCAPED + REENCODED) * s.max_body + ESCAPED * s.max_headers + ENVELOPE


def largest_event_message(s: Limits) -> int:
    return s.max_event + ENVELOPE  # event data is measured once encoded


def check_line_limits(s: Limits) -> None:
    """Raise LimitError, in one line saying what to change, unless every message fits in max_line."""
    api, event = largest_api_message(s), largest_event_message(s)
    if api > s.max_line:
        raise LimitError(f"max_line ({s.max_line} bytes) is below the largest API invoke the limits allow "
                         f"({api} bytes: {ESCAPED + REENCODED} x max_body {s.max_body} + {ESCAPED} x max_headers "
                         f"{s.max_headers} + {ENVELOPE}); raise max_line or lower max_body / max_headers")
    if event > s.max_line:
        raise LimitError(f"max_line ({s.max_line} bytes) is below the largest event invoke the limits allow "
                         f"({event} bytes: max_event {s.max_event} + {ENVELOPE}); raise max_line or lower max_event")
