"""State: key/value storage in groups, reached by handlers through `context.state`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .base import StateStore
from .memory import MemoryStateStore
from .sqlite import SqliteStateStore

if TYPE_CHECKING:
    from ..redis_conn import RedisConn

__all__ = ["MemoryStateStore", "SqliteStateStore", "StateStore", "open_state_store"]


def open_state_store(kind: Literal["sqlite", "memory", "redis"], data_dir: Path,
                     redis: RedisConn | None = None) -> StateStore:
    """The project's state store; `sqlite` keeps it in `<data_dir>/state.db`, `redis` in the given Redis."""
    if kind == "memory":
        return MemoryStateStore()
    if kind == "sqlite":
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        return SqliteStateStore(Path(data_dir) / "state.db")
    if kind == "redis" and redis is not None:
        from .redis import RedisStateStore  # redis-py is imported only by apps that use it

        return RedisStateStore(redis)
    raise ValueError(f"unknown state store kind {kind!r} (expected 'sqlite', 'memory' or 'redis' with a redis_url)")
