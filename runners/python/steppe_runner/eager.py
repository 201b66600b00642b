"""Starting an invocation's coroutine at once, in the loop turn that read its request.

`loop.create_task` runs a coroutine's first step only in the next loop turn, and the answer it queues leaves
one turn later still: for a handler that never waits (most API handlers), two loop turns and a task step
between reading a request and answering it. `start` runs the first step right away instead, as the task it
then belongs to (asyncio.current_task() is that task, as aiohttp's and asyncio's timeouts require), so a
handler that finishes without suspending is answered in the same turn. One that suspends goes on in its
task exactly as if the task had run the step itself. Python 3.12's eager tasks do this natively; this
runner also runs under 3.11.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine, Generator
from typing import Any

_enter_task: Any
_leave_task: Any
try:  # asyncio's own bookkeeping of the current task (C functions in CPython; private, hence the guard)
    from asyncio.tasks import _enter_task, _leave_task
except ImportError:  # pragma: no cover - an interpreter without them: plain tasks
    _enter_task = _leave_task = None


class _Rest(Coroutine[Any, Any, Any]):
    """What the task runs: the rest of a coroutine whose first step ran before the task's own first step.

    The task's first step gets what the coroutine's first step yielded (a future to wait for, or None for a
    bare yield), or an immediate end if it finished; later steps go straight to the coroutine. An exception
    thrown in at the first step (the handler cancelled its own task before its first await) goes to the
    coroutine, where the task would have thrown it. A Coroutine object rather than an `async def` wrapper:
    the task of a handler that finished costs one method call."""

    __slots__ = ("_coro", "_yielded", "_first", "finished")

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self._coro = coro
        self._yielded: Any = None
        self._first = True
        self.finished = False

    def suspended_at(self, yielded: Any) -> None:
        self._yielded = yielded

    def send(self, value: Any) -> Any:
        if self._first:
            self._first = False
            if self.finished:
                raise StopIteration
            yielded, self._yielded = self._yielded, None
            return yielded
        return self._coro.send(value)

    def throw(self, exc: Any, *args: Any) -> Any:  # type: ignore[override]
        self._first = False
        if self.finished:
            raise exc
        return self._coro.throw(exc, *args)

    def close(self) -> None:
        self._coro.close()

    def __next__(self) -> Any:
        return self.send(None)

    def __await__(self) -> Generator[Any, Any, Any]:
        return self  # type: ignore[return-value]


def start(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None]) -> asyncio.Task[Any]:
    """Run `coro`'s first step now, inside the task returned (which carries on with the rest, if any).

    For coroutines that handle their own errors (an invocation's catches everything): an exception that
    escapes the first step propagates from here, and the task then ends with nothing to do."""
    if _enter_task is None or asyncio.current_task(loop) is not None:
        return loop.create_task(coro)  # inside a task already: the plain way
    rest = _Rest(coro)
    context = contextvars.copy_context()
    task = loop.create_task(rest, context=context)
    _enter_task(loop, task)
    try:
        rest.suspended_at(context.run(coro.send, None))
    except StopIteration:
        rest.finished = True
    except BaseException:
        rest.finished = True
        raise
    finally:
        _leave_task(loop, task)
    return task
