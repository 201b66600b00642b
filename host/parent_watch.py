"""Ends a host whose parent is gone: the test helpers start `steppe dev` with STEPPE_PARENT_PID set to
their own pid, so a test run that is killed (or a worker that exits without cleaning up) leaves no host
running behind it."""

from __future__ import annotations

import asyncio
import os
import signal


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


async def stop_when_parent_exits(pid: int, interval: float = 0.5) -> None:
    """SIGTERM to ourselves (an orderly stop) once `pid` no longer runs (it need not be our direct parent:
    STEPPE_COMMAND may run steppe through a wrapper)."""
    while True:
        await asyncio.sleep(interval)
        if _gone(pid):
            os.kill(os.getpid(), signal.SIGTERM)
            return


def watch_parent_from_env() -> asyncio.Task[None] | None:
    raw = os.environ.get("STEPPE_PARENT_PID", "")
    if not raw.isdigit() or int(raw) <= 1:
        return None
    return asyncio.get_running_loop().create_task(stop_when_parent_exits(int(raw)))
