"""What handlers receive: the request object and the context (emit, state, streams, logger)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .hostcalls import HostCalls, HostError, StateConflict
from .jsonio import Output, safe_str
from .redact import REDACTOR

__all__ = ["Context", "HostError", "Request", "StateConflict"]

_ALIASES = {"path_params": "pathParams", "query_params": "queryParams", "raw_body": "rawBody"}


class Request(dict):  # type: ignore[type-arg]
    """The API request (or auth request): a dict that also reads as attributes (req.body)."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            alias = _ALIASES.get(name)
            if alias is not None and alias in self:
                return self[alias]
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        # middleware commonly decorates the request (req.user = ...)
        self[name] = value


class Context:
    # state, streams and logger are made on first use: most handlers touch one of them or none
    __slots__ = ("_calls", "_inv", "_out", "trace_id", "flows", "topic", "attempt", "event_id", "_state",
                 "_streams", "_logger")

    def __init__(self, calls: HostCalls, out: Output, inv: Any, trace_id: Any, flows: Any,
                 delivery: Mapping[str, Any] | None = None) -> None:
        self._calls, self._inv, self._out = calls, inv, out
        self.trace_id = trace_id
        self.flows = flows if flows is not None else []
        # the delivery an event handler runs for (invoke params topic/attempt/eventId); None otherwise
        if delivery:
            self.topic: str | None = delivery.get("topic")
            self.attempt: int | None = delivery.get("attempt")
            self.event_id: str | None = delivery.get("eventId")
        else:
            self.topic = self.attempt = self.event_id = None
        self._state: State | None = None
        self._streams: Streams | None = None
        self._logger: Logger | None = None

    @property
    def state(self) -> State:
        if self._state is None:
            self._state = State(self._calls, self._inv)
        return self._state

    @property
    def streams(self) -> Streams:
        if self._streams is None:
            self._streams = Streams(self._calls, self._inv)
        return self._streams

    @property
    def logger(self) -> Logger:
        if self._logger is None:
            self._logger = Logger(self._out, self._inv.rid)
        return self._logger

    def emit(self, event: Any) -> Any:
        if not isinstance(event, Mapping):
            raise TypeError(f"emit expects a dict {{topic, data}}, got {type(event).__name__}")
        return self._calls.call(self._inv, "emit", {"invocation": self._inv.rid, "event": dict(event)})

    @property
    def eventId(self) -> str | None:  # noqa: N802 - the protocol's name, as in JS
        return self.event_id

    def __repr__(self) -> str:
        return f"<Context trace_id={self.trace_id!r} flows={self.flows!r}>"


class State:
    __slots__ = ("_calls", "_inv")

    def __init__(self, calls: HostCalls, inv: Any) -> None:
        self._calls, self._inv = calls, inv

    def _call(self, method: str, params: dict[str, Any]) -> Any:
        params["invocation"] = self._inv.rid
        return self._calls.call(self._inv, method, params)

    def get(self, group: str, key: str) -> Any:
        return self._call("state.get", {"group": group, "key": key})

    def set(self, group: str, key: str, value: Any, ttl: float | Mapping[str, Any] | None = None) -> Any:
        ttl = ttl.get("ttl") if isinstance(ttl, Mapping) else ttl  # `{"ttl": 60}` as in the dialect
        params = {"group": group, "key": key, "value": value}
        if ttl is not None:
            params["ttl"] = ttl
        return self._call("state.set", params)

    def update(self, group: str, key: str, ops: list[Mapping[str, Any]],
               ttl: float | Mapping[str, Any] | None = None) -> Any:
        """Atomic read-modify-write (ops: set, merge, increment, decrement, append, remove, expect); returns
        the new value. A failed `expect` raises StateConflict (a HostError)."""
        ttl = ttl.get("ttl") if isinstance(ttl, Mapping) else ttl
        params: dict[str, Any] = {"group": group, "key": key, "ops": [dict(op) for op in ops]}
        if ttl is not None:
            params["ttl"] = ttl
        return self._call("state.update", params)

    def delete(self, group: str, key: str) -> Any:
        return self._call("state.delete", {"group": group, "key": key})

    def getGroup(self, group: str) -> Any:  # noqa: N802 - the protocol's name, kept for Motia code
        return self._call("state.getGroup", {"group": group})

    get_group = getGroup

    def clear(self, group: str) -> Any:
        return self._call("state.clear", {"group": group})


class Streams:
    """context.streams.<name> (or context.streams["name"]) for any stream; the host knows which exist."""

    __slots__ = ("_calls", "_inv", "_cache")

    def __init__(self, calls: HostCalls, inv: Any) -> None:
        self._calls, self._inv = calls, inv
        self._cache: dict[str, Stream] = {}

    def __getattr__(self, name: str) -> Stream:
        if name.startswith("__"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str) -> Stream:
        stream = self._cache.get(name)
        if stream is None:
            stream = self._cache[name] = Stream(self._calls, self._inv, name)
        return stream


class Stream:
    __slots__ = ("_calls", "_inv", "name")

    def __init__(self, calls: HostCalls, inv: Any, name: str) -> None:
        self._calls, self._inv, self.name = calls, inv, name

    def _call(self, method: str, params: dict[str, Any]) -> Any:
        params["invocation"] = self._inv.rid
        params["stream"] = self.name
        return self._calls.call(self._inv, method, params)

    def get(self, group_id: str, id: str) -> Any:  # noqa: A002 - Motia's parameter name
        return self._call("streams.get", {"groupId": group_id, "id": id})

    def set(self, group_id: str, id: str, data: Any) -> Any:  # noqa: A002
        return self._call("streams.set", {"groupId": group_id, "id": id, "data": data})

    def delete(self, group_id: str, id: str) -> Any:  # noqa: A002
        return self._call("streams.delete", {"groupId": group_id, "id": id})

    def getGroup(self, group_id: str) -> Any:  # noqa: N802
        return self._call("streams.getGroup", {"groupId": group_id})

    get_group = getGroup

    def send(self, channel: Mapping[str, Any], event: Mapping[str, Any]) -> Any:
        return self._call("streams.send", {"channel": dict(channel), "event": dict(event)})


class Logger:
    """Structured logs: logger.info(msg, fields) or logger.info(msg, key=value)."""

    __slots__ = ("_out", "_rid")

    def __init__(self, out: Output, rid: Any) -> None:
        self._out, self._rid = out, rid

    def _log(self, level: str, msg: Any, fields: Mapping[str, Any] | None, extra: dict[str, Any]) -> None:
        # logging never raises in the handler: a message whose str() fails is shown by its repr, fields JSON
        # cannot carry are degraded by Output.log, and a record that cannot even be built says so
        try:
            if fields and not isinstance(fields, Mapping):
                fields = {"value": fields}
            merged = {**fields, **extra} if fields else extra
            text = msg if isinstance(msg, str) else safe_str(msg)
            self._out.log(self._rid, level, REDACTOR.text(text), "logger", REDACTOR.value(merged))
        except Exception as e:  # noqa: BLE001 - e.g. a Mapping whose items() raises
            self._out.log(self._rid, level, REDACTOR.text(safe_str(msg)), "logger",
                          {"logError": f"the fields could not be read: {type(e).__name__}"})

    def debug(self, msg: Any, fields: Mapping[str, Any] | None = None, **extra: Any) -> None:
        self._log("debug", msg, fields, extra)

    def info(self, msg: Any, fields: Mapping[str, Any] | None = None, **extra: Any) -> None:
        self._log("info", msg, fields, extra)

    def warn(self, msg: Any, fields: Mapping[str, Any] | None = None, **extra: Any) -> None:
        self._log("warn", msg, fields, extra)

    warning = warn

    def error(self, msg: Any, fields: Mapping[str, Any] | None = None, **extra: Any) -> None:
        self._log("error", msg, fields, extra)
