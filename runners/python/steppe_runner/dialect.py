"""The tutorial's one-argument dialect for Python steps.

A step module with no `config` whose `handler` takes one parameter (`async def handler(event)`), with an
optional module-level `schedule = "0 9 * * *"` making it a cron step. The file says nothing else about
its trigger: the host completes the config from steppe.toml (`[steps."<file>"]`). The handler gets one
`Event` (docs/steps.md, "The one-argument dialect"); its calls return awaitables in `async def` handlers
and values in plain `def` ones, like the context's.
"""

from __future__ import annotations

import inspect
import itertools
import json
import os
import runpy
import time
from collections.abc import Mapping
from types import ModuleType
from typing import Any

DIALECT = "tutorial"  # the marker in the config sent to the host, which completes it
DEFAULT_STATE_GROUP = "default"  # the group of the dialect's groupless state calls

_preloaded: set[str] = set()
_stream_seq = itertools.count(1)


def preload() -> None:
    """Run the project's preload files (steppe.toml `[runners.python] preload`, sent by the host as
    STEPPE_PRELOAD, a JSON list of absolute paths) once each, before the first step loads. One that
    raises fails the load that needed it and is tried again by the next load."""
    for path in json.loads(os.environ.get("STEPPE_PRELOAD") or "[]"):
        if path not in _preloaded:
            runpy.run_path(path, run_name="__steppe_preload__")
            _preloaded.add(path)


def config_of(module: ModuleType) -> dict[str, Any] | None:
    """The config to send for a dialect module, or None when the module is not one."""
    if hasattr(module, "config"):
        return None
    handler = getattr(module, "handler", None)
    if not callable(handler) or _positional_count(handler) != 1:
        return None
    schedule = getattr(module, "schedule", None)
    config: dict[str, Any] = {"dialect": DIALECT}
    if isinstance(schedule, str):
        config.update(type="cron", cron=schedule)
    return config


def _positional_count(fn: Any) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return -1
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


def seconds(ttl: Any) -> Any:
    """A ttl given as seconds or as the dialect's `{"ttl": seconds}` options."""
    return ttl.get("ttl") if isinstance(ttl, Mapping) else ttl


class GrouplessState:
    """`event.state`: the context's state calls on the default group."""

    __slots__ = ("_state",)

    def __init__(self, state: Any) -> None:
        self._state = state

    def get(self, key: str) -> Any:
        return self._state.get(DEFAULT_STATE_GROUP, key)

    def set(self, key: str, value: Any, options: Any = None, ttl: float | None = None) -> Any:
        return self._state.set(DEFAULT_STATE_GROUP, key, value, ttl if ttl is not None else seconds(options))

    def update(self, key: str, ops: list[Mapping[str, Any]], options: Any = None, ttl: float | None = None) -> Any:
        return self._state.update(DEFAULT_STATE_GROUP, key, ops, ttl if ttl is not None else seconds(options))

    def delete(self, key: str) -> Any:
        return self._state.delete(DEFAULT_STATE_GROUP, key)

    def get_group(self) -> Any:
        return self._state.get_group(DEFAULT_STATE_GROUP)

    getGroup = get_group  # noqa: N815 - the JS name, kept for ported code

    def clear(self) -> Any:
        return self._state.clear(DEFAULT_STATE_GROUP)


class Event:
    """The one argument of a dialect handler; attributes as in JS (`event.data`, `event.topic`...)."""

    def __init__(self, trigger: str, data: Any, ctx: Any) -> None:
        req = data if trigger == "api" and isinstance(data, Mapping) else None
        self.data = self.body = req.get("body") if req is not None else data
        self.headers = req.get("headers", {}) if req is not None else {}
        self.query = req.get("queryParams", {}) if req is not None else {}
        self.params = req.get("pathParams", {}) if req is not None else {}
        self.raw_body = req.get("rawBody") if req is not None else None
        self.topic, self.attempt, self.event_id = ctx.topic, ctx.attempt, ctx.event_id
        self.trace_id = ctx.trace_id
        self.state = GrouplessState(ctx.state)
        self.logger = ctx.logger
        self.ctx = ctx

    @property
    def traceId(self) -> Any:  # noqa: N802 - the JS name
        return self.trace_id

    @property
    def rawBody(self) -> Any:  # noqa: N802
        return self.raw_body

    @property
    def eventId(self) -> Any:  # noqa: N802
        return self.event_id

    def emit(self, topic: Any, data: Any = None) -> Any:
        """emit(topic, data), or emit({"topic", "data"}) as the context takes it."""
        return self.ctx.emit(topic if isinstance(topic, Mapping) else {"topic": topic, "data": data})

    def stream(self, name: str, data: Any) -> Any:
        """A new item in stream `name`, in the group of this trace, with time-ordered ids."""
        item_id = f"{int(time.time() * 1000):015d}-{next(_stream_seq):06d}"
        return self.ctx.streams[name].set(self.trace_id, item_id, data)


async def run(invoker: Any, inv: Any, handler: Any, trigger: str, data: Any, ctx: Any) -> Any:
    """Run a dialect handler; the API's return value is shaped by invoke.api_response."""
    return await invoker.call(inv, handler, Event(trigger, data, ctx))
