"""Steppe's Python runner: speaks protocol v1 (protocol/SPEC.md) on stdin/stdout and runs Python steps.

Stdlib only, so it works under any project virtualenv's interpreter; orjson is used when importable.
User code may `from steppe_runner import HostError` to catch refusals from the host (and `StateConflict`,
a failed `expect` of `state.update`).
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["HostError", "StateConflict", "__version__"]


def __getattr__(name: str) -> Any:
    # imported on use, so that runner.py can set up `deferred` before anything imports asyncio
    if name in ("HostError", "StateConflict"):
        from . import hostcalls

        return getattr(hostcalls, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
