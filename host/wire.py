"""The runner protocol v1, as types: the whole contract between host and runners (see protocol/SPEC.md)."""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

PROTOCOL_VERSION = 1

Id = int | str
Trigger = Literal["api", "event", "cron", "canAccess", "authenticate"]
LoadKind = Literal["step", "stream", "auth"]
Level = Literal["debug", "info", "warn", "error"]

# error codes (protocol/SPEC.md, "Error codes")
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR = (
    -32700, -32600, -32601, -32602, -32603)
HANDLER_ERROR, LOAD_ERROR, CANCELLED, NOT_LOADED, UNSUPPORTED_VERSION = (
    -32000, -32001, -32002, -32003, -32004)
HOST_REFUSED = -32010


class ErrorData(TypedDict, total=False):
    type: str
    stack: str


class Error(TypedDict):
    code: int
    message: str
    data: ErrorData


class InitializeResult(TypedDict):
    protocolVersion: int
    language: str
    runnerVersion: str
    pid: int


class LoadResult(TypedDict):
    config: dict[str, Any]
    handler: bool
    middleware: int
    canAccess: bool


class InvokeParams(TypedDict):
    path: str
    step: str
    trigger: Trigger
    input: Any
    traceId: str
    flows: list[str]
    # event trigger only (optional: a 1.0 runner ignores them): the delivery's topic, attempt (1 = first)
    # and event id, exposed as ctx.topic / ctx.attempt / ctx.eventId
    topic: NotRequired[str]
    attempt: NotRequired[int]
    eventId: NotRequired[str]


class ApiRequest(TypedDict):
    body: Any
    headers: dict[str, str]
    pathParams: dict[str, str]
    queryParams: dict[str, str | list[str]]
    rawBody: str


class ApiResponse(TypedDict, total=False):
    status: int
    body: Any
    bodyBase64: str
    headers: dict[str, str]


class LogParams(TypedDict, total=False):
    invocation: Id | None
    level: Level
    msg: str
    fields: dict[str, Any]
    source: Literal["logger", "stdout", "stderr"]


# Requests a running handler makes back into the host; each carries `invocation`.
HANDLER_CALLS = (
    "emit",
    "state.get", "state.set", "state.update", "state.delete", "state.getGroup", "state.clear",
    "streams.get", "streams.set", "streams.delete", "streams.getGroup", "streams.send",
)
