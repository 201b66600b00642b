"""A context for unit tests of a Python handler: records every emit, state, stream and log call, keeps
state and streams in dicts, and needs no host. Shape of the runner's `context` (docs/steps.md).

It refuses what the host and runner refuse, so a unit test cannot pass on a call that fails in a real
run: data that is not JSON raises TypeError at the call, values are kept as JSON gives them back (a tuple
is a list, a datetime its ISO text), an emit's `id`/`messageGroupId` must be text, and, given the step's
`config`, a topic not in its `emits` raises `UndeclaredTopic`."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from ..event import emitted_fields


class HostError(Exception):
    """A refusal, as the runner raises it in a handler: `type` names the reason and the class is named after
    it (`UndeclaredTopic`, `InvalidParams`), so `except HostError` catches them all."""

    def __init__(self, message: str, type_: str = "HostError") -> None:
        super().__init__(message)
        self.type, self.code = type_, -32010


_reasons: dict[str, type[HostError]] = {}


def refusal(reason: str, message: str) -> HostError:
    cls = _reasons.setdefault(reason, type(reason, (HostError,), {"__module__": __name__}))
    return cls(message, reason)


def as_json(value: Any) -> Any:
    """`value` as the host would keep it; TypeError, as the runner raises at the call, if it is not JSON."""
    try:
        return orjson.loads(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS))
    except TypeError as e:
        raise TypeError(f"not JSON: {e}") from None


class _Recorder:
    def __init__(self, calls: list[tuple[str, tuple[Any, ...]]], prefix: str, asynchronous: bool) -> None:
        self._calls, self._prefix, self._async = calls, prefix, asynchronous

    def _answer(self, name: str, args: tuple[Any, ...], value: Any) -> Any:
        self._calls.append((f"{self._prefix}{name}", args))
        return _result(value, None, self._async)

    def _refuse(self, name: str, args: tuple[Any, ...], error: HostError) -> Any:
        self._calls.append((f"{self._prefix}{name}", args))
        return _result(None, error, self._async)


def _result(value: Any, error: HostError | None, asynchronous: bool) -> Any:
    """A call's outcome as the runner gives it: an awaitable, or (plain `def` handlers) the value itself."""
    if not asynchronous:
        if error is not None:
            raise error
        return value

    async def done() -> Any:
        if error is not None:
            raise error
        return value
    return done()


class MockState(_Recorder):
    """`context.state`: a dict of groups; every call is recorded in `calls` as (name, args)."""

    def __init__(self, calls: list[tuple[str, tuple[Any, ...]]], asynchronous: bool) -> None:
        super().__init__(calls, "state.", asynchronous)
        self.data: dict[str, dict[str, Any]] = {}

    def get(self, group: str, key: str) -> Any:
        return self._answer("get", (group, key), self.data.get(group, {}).get(key))

    def set(self, group: str, key: str, value: Any, ttl: float | None = None) -> Any:
        value = as_json(value)
        self.data.setdefault(group, {})[key] = value
        return self._answer("set", (group, key, value) if ttl is None else (group, key, value, ttl), value)

    def update(self, group: str, key: str, ops: Any, ttl: float | None = None) -> Any:
        """The host's own ops (steppe.state.ops), so an update behaves as under a host: the new value, or
        StateConflict / InvalidParams as the runner raises them."""
        from ..state.ops import StateConflict, apply_ops

        args = (group, key, ops) if ttl is None else (group, key, ops, ttl)
        try:
            value = as_json(apply_ops(self.data.get(group, {}).get(key), as_json(ops)))
        except StateConflict as e:
            return self._refuse("update", args, refusal("StateConflict", str(e)))
        except (ValueError, TypeError) as e:
            return self._refuse("update", args, refusal("InvalidParams", f"state.update: {e}"))
        self.data.setdefault(group, {})[key] = value
        return self._answer("update", args, value)

    def delete(self, group: str, key: str) -> Any:
        return self._answer("delete", (group, key), self.data.get(group, {}).pop(key, None))

    def get_group(self, group: str) -> Any:
        return self._answer("get_group", (group,), list(self.data.get(group, {}).values()))

    getGroup = get_group  # noqa: N815 - the protocol's name, kept for Motia code

    def clear(self, group: str) -> Any:
        self.data.pop(group, None)
        return self._answer("clear", (group,), None)


class MockStream(_Recorder):
    def __init__(self, calls: list[tuple[str, tuple[Any, ...]]], name: str, asynchronous: bool) -> None:
        super().__init__(calls, f"streams.{name}.", asynchronous)
        self.items: dict[str, dict[str, Any]] = {}
        self.sent: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def get(self, group_id: str, id: str) -> Any:  # noqa: A002 - Motia's parameter name
        return self._answer("get", (group_id, id), self.items.get(group_id, {}).get(id))

    def set(self, group_id: str, id: str, data: Any) -> Any:  # noqa: A002
        data = as_json(data)
        item = {**data, "id": id} if isinstance(data, Mapping) else data
        self.items.setdefault(group_id, {})[id] = item
        return self._answer("set", (group_id, id, data), item)

    def delete(self, group_id: str, id: str) -> Any:  # noqa: A002
        return self._answer("delete", (group_id, id), self.items.get(group_id, {}).pop(id, None))

    def get_group(self, group_id: str) -> Any:
        return self._answer("get_group", (group_id,), list(self.items.get(group_id, {}).values()))

    getGroup = get_group  # noqa: N815

    def send(self, channel: Mapping[str, Any], event: Mapping[str, Any]) -> Any:
        event = as_json(event)
        self.sent.append((dict(channel), dict(event)))
        return self._answer("send", (channel, event), None)


class MockStreams:
    """`context.streams.<name>` (or `context.streams["name"]`): one MockStream per name, made on first use."""

    def __init__(self, calls: list[tuple[str, tuple[Any, ...]]], asynchronous: bool) -> None:
        self._calls, self._async = calls, asynchronous
        self._streams: dict[str, MockStream] = {}

    def __getitem__(self, name: str) -> MockStream:
        if name not in self._streams:
            self._streams[name] = MockStream(self._calls, name, self._async)
        return self._streams[name]

    def __getattr__(self, name: str) -> MockStream:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]


class MockLogger:
    def __init__(self) -> None:
        self.records: list[tuple[str, Any, dict[str, Any]]] = []

    def _log(self, level: str, msg: Any, fields: Mapping[str, Any] | None, extra: dict[str, Any]) -> None:
        self.records.append((level, msg, {**(fields or {}), **extra}))

    def debug(self, msg: Any, fields: Mapping[str, Any] | None = None, **extra: Any) -> None:
        self._log("debug", msg, fields, extra)

    def info(self, msg: Any, fields: Mapping[str, Any] | None = None, **extra: Any) -> None:
        self._log("info", msg, fields, extra)

    def warn(self, msg: Any, fields: Mapping[str, Any] | None = None, **extra: Any) -> None:
        self._log("warn", msg, fields, extra)

    warning = warn

    def error(self, msg: Any, fields: Mapping[str, Any] | None = None, **extra: Any) -> None:
        self._log("error", msg, fields, extra)


class MockContext:
    """Pass as the handler's `context`. `asynchronous=False` for a plain `def` handler (calls return
    values instead of awaitables, as in the runner). `topic` is the event's topic for event handlers;
    `config` the step's config (`load_step(path).config`), whose `emits` the host holds emits to.

        ctx = MockContext()
        await handler({"id": 1}, ctx)
        assert ctx.emitted == [{"topic": "done", "data": {"id": 1}}]
    """

    def __init__(self, *, topic: str | None = None, trace_id: str | None = None, flows: list[str] | None = None,
                 state: Mapping[str, Mapping[str, Any]] | None = None, asynchronous: bool = True,
                 config: Mapping[str, Any] | None = None) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []  # every call in order: ("emit", (event,)), ...
        self.emitted: list[dict[str, Any]] = []
        self.topic = topic
        self.trace_id = trace_id or uuid.uuid4().hex
        self.flows = flows or []
        self.state = MockState(self.calls, asynchronous)
        for group, values in (state or {}).items():
            self.state.data[group] = dict(values)
        self.streams = MockStreams(self.calls, asynchronous)
        self.logger = MockLogger()
        self._async = asynchronous
        self.config = config

    @property
    def traceId(self) -> str:  # noqa: N802 - the JS name, for Motia-shaped code
        return self.trace_id

    def emit(self, event: Mapping[str, Any]) -> Any:
        if not isinstance(event, Mapping) or not isinstance(event.get("topic"), str):
            raise TypeError(f"emit expects a dict {{topic, data}}, got {event!r}")
        event = {**event, "data": as_json(event["data"])} if "data" in event else dict(event)
        self.calls.append(("emit", (event,)))
        if error := self._refused(event):
            return _result(None, error, self._async)
        self.emitted.append(event)
        return _result(None, None, self._async)

    def _refused(self, event: dict[str, Any]) -> HostError | None:
        """The host's refusal of this emit (host/calls.py), or None."""
        topic = event["topic"]
        if not topic:
            return refusal("InvalidParams", "emit needs {topic: string, data}")
        declared = [e if isinstance(e, str) else e.get("topic") for e in (self.config or {}).get("emits") or []]
        if declared and topic not in declared:
            name = (self.config or {}).get("name")
            return refusal("UndeclaredTopic", f"step {name!r} emitted topic {topic!r}, which is not in its "
                           f"config.emits {declared}; the event was not sent")
        try:
            emitted_fields(event)
        except ValueError as e:
            return refusal("InvalidParams", f"emit: {e}")
        return None

    def topics(self) -> list[str]:
        """The topics emitted so far, in order."""
        return [e["topic"] for e in self.emitted]
