"""Error objects for answers, with stacks that show the user's frames only."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import traceback
from typing import Any

HANDLER_ERROR, LOAD_ERROR, CANCELLED, NOT_LOADED, UNSUPPORTED_VERSION = -32000, -32001, -32002, -32003, -32004
METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR = -32601, -32602, -32603

_RUNNER_DIR = os.path.dirname(os.path.abspath(__file__))
_RUNNER_MAIN = os.path.join(os.path.dirname(_RUNNER_DIR), "runner.py")
# plumbing a handler's call passes through on its way from the runner: not the user's code
_PLUMBING = tuple(os.path.dirname(str(m.__file__)) + os.sep for m in (asyncio, concurrent.futures)) + (
    _RUNNER_DIR + os.sep,)
_PLUMBING_FILES = {threading.__file__, _RUNNER_MAIN}


class RequestError(Exception):
    """A request the runner refuses before running user code (bad params, unknown path)."""

    def __init__(self, code: int, message: str, type_: str = "InvalidParams") -> None:
        super().__init__(message)
        self.code, self.type = code, type_


def _user_frame(frame: traceback.FrameSummary) -> bool:
    name = frame.filename
    return not (name.startswith(_PLUMBING) or name in _PLUMBING_FILES or name.startswith("<frozen "))


def _trim(te: traceback.TracebackException, seen: set[int]) -> None:
    if id(te) in seen:
        return
    seen.add(id(te))
    te.stack = traceback.StackSummary.from_list([f for f in te.stack if _user_frame(f)])
    for chained in (te.__cause__, te.__context__):
        if chained is not None:
            _trim(chained, seen)


def user_stack(exc: BaseException) -> str:
    try:
        te = traceback.TracebackException.from_exception(exc)
        _trim(te, set())
        lines = list(te.format())
    except Exception as e:  # noqa: BLE001 - an exception object odd enough to break traceback itself
        return f"(its traceback could not be formatted: {type(e).__name__})"
    if not te.stack and lines and lines[0].startswith("Traceback"):
        lines = lines[1:]  # no user frame left: the header would announce an empty traceback
    return "".join(lines).rstrip("\n")


def _text(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001
        return "<exception str() failed>"
    return text if isinstance(text, str) else "<exception str() failed>"


def error_from(code: int, exc: BaseException, message: str | None = None) -> dict[str, Any]:
    # str() may fail (a __str__ that raises or returns a non-string): said as traceback says it, keeping the
    # exception's type and stack; text the host cannot take (lone surrogates) is repaired when it is sent
    text = message if message is not None else (_text(exc) or type(exc).__name__)
    return {"code": code, "message": text,
            "data": {"type": type(exc).__name__, "stack": user_stack(exc)}}


def plain_error(code: int, message: str, type_: str) -> dict[str, Any]:
    return {"code": code, "message": message, "data": {"type": type_, "stack": ""}}
