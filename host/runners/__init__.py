"""Runner processes: which command runs a file (registry), one process (process), keeping it up (supervisor).

The names below are imported on first use, not with the package: `prespawn.py` reads the registry before
the host imports asyncio, which the process and supervisor modules need."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .process import RunnerProcess
    from .registry import RunnerRegistry, RunnerSpec
    from .supervisor import InvocationContext, RunnerSupervisor, RunnerUnavailable

_HOMES = {"RunnerProcess": "process", "RunnerRegistry": "registry", "RunnerSpec": "registry",
          "InvocationContext": "supervisor", "RunnerSupervisor": "supervisor", "RunnerUnavailable": "supervisor"}

__all__ = ["InvocationContext", "RunnerProcess", "RunnerRegistry", "RunnerSpec", "RunnerSupervisor",
           "RunnerUnavailable"]


def __getattr__(name: str) -> Any:
    if (home := _HOMES.get(name)) is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{home}", __name__), name)
