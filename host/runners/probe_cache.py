"""What a runtime's version probe printed (`node -p ...`, `ruby -e ...`), remembered per binary in the user's
cache folder: a probe is a whole interpreter start, on the path to a host's first answer, and its answer
only changes when the binary does. The key is the binary's real path, size and modification time, plus the
probe's own arguments; anything unreadable or unwritable is a miss, never an error."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from ..filewrite import write_whole

VERSION = 1  # bump when a probe's meaning changes: older entries are then ignored


def cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "steppe" / "runtime-probes.json"


def _key(binary: str, args: list[str]) -> str | None:
    try:
        real = os.path.realpath(binary)
        st = os.stat(real)
    except OSError:
        return None
    return json.dumps([VERSION, real, st.st_size, st.st_mtime_ns, args])


def _read() -> dict[str, str]:
    try:
        data = json.loads(cache_file().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(entries: dict[str, str]) -> None:
    path = cache_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_whole(path, json.dumps(entries))  # hosts starting at once never read half a file
    except OSError:
        pass


class NotCached(Exception):
    """`probe_output(..., cached_only=True)` found no answer in the cache: the probe has to run."""


def probe_output(binary: str, args: list[str], timeout: float = 10, cached_only: bool = False) -> str:
    """The stdout of `binary *args`, from the cache when this very binary was probed before. Raises what
    subprocess.run raises when the probe has to run and cannot, and NotCached instead of running it when
    `cached_only` (a caller on the event loop: a hit costs a file read, a probe an interpreter start)."""
    key = _key(binary, args)
    if key is not None and isinstance(hit := _read().get(key), str):
        return hit
    if cached_only:
        raise NotCached(binary)
    out = subprocess.run([binary, *args], capture_output=True, text=True, timeout=timeout)
    if key is not None and out.returncode == 0 and out.stdout.strip():
        entries = _read()
        entries[key] = out.stdout
        _write(entries)
    return out.stdout
