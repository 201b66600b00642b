"""Steppe's Python runner: speaks protocol v1 (protocol/SPEC.md) on stdin/stdout and runs Python steps.

Stdlib only, so it works under any project virtualenv's interpreter; orjson is used when importable.
User code may `from steppe_runner import HostError` to catch refusals from the host.
"""

from .context import HostError

__version__ = "0.1.0"
__all__ = ["HostError", "__version__"]
