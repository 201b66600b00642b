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


class _Rest:
    """What the task runs: the rest of a coroutine whose first step ran outside the task's own steps.

    Primed before the task is made, it waits at a first yield for the task's first step; then it hands the
    task whatever the coroutine's first step yielded (a future to wait for, or None for a bare yield), and
    from then on passes each value sent or exception thrown by the task on to the coroutine. An exception
    thrown at that first yield (the handler cancelled its own task in its first step) goes to the
    coroutine too, as the task would have thrown it there."""

    __slots__ = ("coro", "yielded", "finished")

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self.coro = coro
        self.yielded: Any = None
        self.finished = False

    def __await__(self) -> Generator[Any, Any, Any]:
        yielded: Any = None  # the priming yield
        coro = self.coro
        first = True
        while True:
            try:
                sent = yield yielded
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as e:  # noqa: BLE001 - a cancellation or error thrown in by the task
                if self.finished:
                    raise
                try:
                    yielded = coro.throw(e)
                except StopIteration as stop:
                    return stop.value
                first = False
                continue
            if first:
                first = False
                if self.finished:
                    return None
                yielded, self.yielded = self.yielded, None
                continue
            try:
                yielded = coro.send(sent)
            except StopIteration as stop:
                return stop.value


async def _run_rest(rest: _Rest) -> Any:
    return await rest


def start(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None]) -> asyncio.Task[Any]:
    """Run `coro`'s first step now, inside the task returned (which carries on with the rest, if any).

    For coroutines that handle their own errors (an invocation's catches everything): an exception that
    escapes the first step propagates from here, and the task then ends with nothing to do."""
    if _enter_task is None or asyncio.current_task(loop) is not None:
        return loop.create_task(coro)  # inside a task already: the plain way
    rest = _Rest(coro)
    runner = _run_rest(rest)
    runner.send(None)  # parked at the first yield, where the task's first step resumes it
    context = contextvars.copy_context()
    task = loop.create_task(runner, context=context)
    _enter_task(loop, task)
    try:
        rest.yielded = context.run(coro.send, None)
    except StopIteration:
        rest.finished = True
    except BaseException:
        rest.finished = True
        raise
    finally:
        _leave_task(loop, task)
    return task
