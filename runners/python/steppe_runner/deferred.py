"""Modules the runner's imports name but only some handlers use, loaded on their first use.

asyncio imports `ssl` (and its `sslproto` reads ssl's names at import), which maps OpenSSL's libraries into
the process: ~4.5 MB of an idle runner's RSS, for handlers that mostly never open a TLS connection. Each
module here is first registered as a stand-in; the first attribute read on it (`ssl.SSLContext`, a TLS
connection made by asyncio) imports the real module, which then replaces the stand-in in sys.modules and
lends it all its names, so modules that had bound the stand-in see the real one's contents.

Must run before asyncio is imported (runner.py does it first).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import threading
import types
from typing import Any

DEFERRED = ("ssl", "asyncio.sslproto")

_lock = threading.RLock()  # a worker thread and the loop may both reach for ssl first


class _StandIn(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        return getattr(_load(self), name)


def _load(stand_in: _StandIn) -> types.ModuleType:
    name = stand_in.__name__
    with _lock:
        if sys.modules.get(name) is stand_in:
            del sys.modules[name]
            try:
                real = importlib.import_module(name)
            except BaseException:
                sys.modules[name] = stand_in
                raise
            stand_in.__dict__.update(real.__dict__)  # later reads find the names without this hook
        return sys.modules[name]


def defer(names: tuple[str, ...] = DEFERRED) -> None:
    """Register stand-ins for `names` that are not imported yet (and exist)."""
    for name in names:
        if name in sys.modules:
            continue
        parent, _, _ = name.rpartition(".")
        # the parent package's spec gives its folder without importing it (asyncio must not load yet)
        path = None
        if parent:
            parent_spec = importlib.util.find_spec(parent)
            if parent_spec is None:
                continue
            path = parent_spec.submodule_search_locations
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None:
            continue
        stand_in = _StandIn(name)
        stand_in.__spec__ = spec
        sys.modules[name] = stand_in
