"""`.steppe/host.json`: where a running host can be reached ({url, pid, mode, root}), written at start and
removed at stop, so CLI commands find it without --port/--url."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .filewrite import write_whole
from .settings import Settings

if TYPE_CHECKING:
    from .logs import LogBook

NAME = "host.json"


def host_file(settings: Settings) -> Path:
    return settings.data_path / NAME


def write_host_file(settings: Settings, logs: LogBook) -> None:
    """Where this host is, for the CLI; a file that cannot be written is a warning (the CLI then needs
    --port), not a reason to stop serving."""
    address = "127.0.0.1" if settings.bind_address in ("0.0.0.0", "::", "") else settings.bind_address
    if ":" in address:
        address = f"[{address}]"
    info = {"url": f"http://{address}:{settings.port}", "pid": os.getpid(), "mode": settings.mode,
            "root": str(settings.root)}
    path = host_file(settings)
    try:
        write_whole(path, json.dumps(info) + "\n")  # hosts started together on one folder each write their own
    except OSError as e:
        logs.write("warn", f"could not write {path} ({e}); CLI commands need --port to find this host")


def remove_host_file(settings: Settings) -> None:
    """Only our own: a second host started on the project since then keeps its file."""
    path = host_file(settings)
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_host_url(settings: Settings) -> str | None:
    """The URL in host.json when the process that wrote it still runs (a killed host leaves a stale file)."""
    try:
        info = json.loads(host_file(settings).read_text())
    except (OSError, ValueError):
        return None
    if isinstance(info, dict) and isinstance(info.get("url"), str) and _alive(info.get("pid")):
        return str(info["url"])
    return None
