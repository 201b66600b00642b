"""Steppe's Python runner: `python runner.py`, with the project root as working directory.

Speaks protocol v1 (protocol/SPEC.md) on stdin/stdout; see README.md beside this file.
"""

import os
import sys


def _start() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    if here not in sys.path:
        sys.path.insert(0, here)
    from steppe_runner import deferred

    deferred.defer()  # before anything imports asyncio
    from steppe_runner import server

    # imported now, the package no longer needs this directory on sys.path; leaving it there would let
    # `runner.py` shadow a user module called `runner`
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    server.main()


if __name__ == "__main__":
    _start()
