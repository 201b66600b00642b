"""State: key/value storage in groups, reached by handlers through `context.state`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from .base import StateStore
from .memory import MemoryStateStore
from .sqlite import SqliteStateStore

__all__ = ["MemoryStateStore", "SqliteStateStore", "StateStore", "open_state_store"]


def open_state_store(kind: Literal["sqlite", "memory"], data_dir: Path) -> StateStore:
    """The project's state store; `sqlite` keeps it in `<data_dir>/state.db`."""
    if kind == "memory":
        return MemoryStateStore()
    if kind == "sqlite":
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        return SqliteStateStore(Path(data_dir) / "state.db")
    raise ValueError(f"unknown state store kind {kind!r} (expected 'sqlite' or 'memory')")
