"""Steppe's Python runner: speaks protocol v1 (protocol/SPEC.md) on stdin/stdout and runs Python steps.

Stdlib only, so it works under any project virtualenv's interpreter; orjson is used when importable.
User code may `from steppe_runner import HostError` to catch refusals from the host (and `StateConflict`,
a failed `expect` of `state.update`).
"""

from .context import HostError, StateConflict

__version__ = "0.1.0"
__all__ = ["HostError", "StateConflict", "__version__"]
