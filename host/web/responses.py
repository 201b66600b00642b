"""Which value an API handler returns is an HTTP response, and which is a plain body (docs/steps.md).

A response is an object whose keys are only `status`, `body`, `headers` and `bodyBase64`, with `status`
an integer 100-599 (or no `status` and a `body`, answered 200). Any other value is the body of a 200
JSON answer: `{"status": "processed"}` is a body, since a string is no HTTP status. The runners apply
the same rule before answering (protocol/SPEC.md); the host applies it again for runners that do not.
"""

from __future__ import annotations

from typing import Any

RESPONSE_KEYS = frozenset(("status", "body", "headers", "bodyBase64"))


def is_response(value: Any) -> bool:
    if not isinstance(value, dict) or not set(value) <= RESPONSE_KEYS:
        return False
    if "status" in value:
        status = value["status"]
        return isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 599
    return "body" in value or "bodyBase64" in value


def as_response(value: Any) -> dict[str, Any]:
    """`value` as a response: itself when it is one, else a 200 with `value` as its body."""
    return value if is_response(value) else {"status": 200, "body": value}
