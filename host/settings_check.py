"""What each setting may be, checked once when the settings are read: a value the host cannot use stops the
start with one line naming the setting, instead of failing later far from it (a runner_concurrency of -5
ran no delivery at all; an api_timeout of 0 answered every request 504)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Check = tuple[str, Callable[[Any], bool]]


def is_number(x: Any) -> bool:
    """An int or a float, not a bool (which Python counts as an int)."""
    return isinstance(x, int | float) and not isinstance(x, bool)


def _whole(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


ABOVE_0: Check = ("a number above 0", lambda x: is_number(x) and x > 0)
AT_LEAST_0: Check = ("a number, 0 or more", lambda x: is_number(x) and x >= 0)
WHOLE_ABOVE_0: Check = ("a whole number above 0", lambda x: _whole(x) and x > 0)
WHOLE_AT_LEAST_0: Check = ("a whole number, 0 or more", lambda x: _whole(x) and x >= 0)


def one_of(*values: str) -> Check:
    return (" or ".join(repr(v) for v in values), lambda x: x in values)


CHECKS: dict[str, Check] = {
    "port": ("a port number from 0 to 65535", lambda x: _whole(x) and 0 <= x <= 65535),
    "mode": one_of("dev", "start"),
    "backend": one_of("", "sqlite", "memory", "redis"),  # before the three it sets
    "state": one_of("sqlite", "memory", "redis"),
    "streams": one_of("sqlite", "memory", "redis"),
    "bus": one_of("sqlite", "memory", "redis"),
    "log_level": one_of("debug", "info", "warn", "warning", "error"),
    "log_format": one_of("", "pretty", "json"),
    "retry_base": AT_LEAST_0,
    "retry_cap": ABOVE_0,
    "step_concurrency": WHOLE_ABOVE_0,
    "runner_concurrency": WHOLE_ABOVE_0,
    "dedupe_window": ABOVE_0,
    "drain_grace": AT_LEAST_0,
    "ping_interval": ABOVE_0,
    "ping_timeout": ABOVE_0,
    "cancel_grace": ABOVE_0,
    "storage_check_interval": ABOVE_0,
    "backlog_age_warn": ABOVE_0,
    "api_timeout": ABOVE_0,
    "event_timeout": ABOVE_0,
    "max_body": WHOLE_ABOVE_0,
    "max_event": WHOLE_ABOVE_0,
    "max_line": WHOLE_ABOVE_0,
    "max_headers": WHOLE_ABOVE_0,
    "header_timeout": ABOVE_0,
    "body_timeout": ABOVE_0,
    "restart_cap": ABOVE_0,
    "telemetry_days": ABOVE_0,
    "telemetry_mb": ABOVE_0,
    "telemetry_rate": AT_LEAST_0,  # 0: every trace recorded
    "telemetry_per_trace": WHOLE_AT_LEAST_0,  # 0: no cap
    "max_hops": WHOLE_ABOVE_0,
    "max_json_depth": WHOLE_ABOVE_0,
    "redis_lease": ABOVE_0,
    "ws_max_queue_bytes": WHOLE_ABOVE_0,
    "keep_emitted": ("a whole number, 0 or more (-1: the mode's default)", lambda x: _whole(x) and x >= -1),
}


def check_settings(values: Any, source: Callable[[str], str]) -> None:
    """Raise ValueError for the first setting whose value the host cannot use; `source(name)` says where it
    was set (`STEPPE_X`, steppe.toml)."""
    for name, (valid, ok) in CHECKS.items():
        value = getattr(values, name)
        if not ok(value):
            raise ValueError(f"{name} ({source(name)}) must be {valid}, got {value!r}")
