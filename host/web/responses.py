"""Which value an API handler returns is an HTTP response, and which is a plain body (docs/steps.md).

A response is an object whose keys are only `status`, `body`, `headers` and `bodyBase64`, and which has
an integer `status` or one of the other three keys. Any other value is the body of a 200 JSON answer:
`{"status": "processed"}` is a body, since a string alone is no HTTP status. A response whose status is
not an integer 200-599 (`{"status": 999}`, `{"status": "abc", "body": ...}`) is a handler error: 500,
with the reason in the step's log. The runners apply the same rule before answering (protocol/SPEC.md);
the host applies it again for runners that do not.
"""

from __future__ import annotations

from typing import Any

RESPONSE_KEYS = frozenset(("status", "body", "headers", "bodyBase64"))


def is_response(value: Any) -> bool:
    if not isinstance(value, dict) or not set(value) <= RESPONSE_KEYS:
        return False
    status = value.get("status")
    if isinstance(status, int) and not isinstance(status, bool):
        return True  # an out-of-range number is still meant as a status: it is refused, not sent as a body
    return any(k != "status" for k in value)


def as_response(value: Any) -> dict[str, Any]:
    """`value` as a response: itself when it is one, else a 200 with `value` as its body."""
    return value if is_response(value) else {"status": 200, "body": value}
