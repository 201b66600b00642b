"""Streams: stored items that browsers watch live over a WebSocket;
handlers reach them as `context.streams`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .base import StreamStore
from .hub import StreamHub, Streams, UnknownStream
from .memory import MemoryStreamStore
from .sqlite import SqliteStreamStore
from .ws import StreamSocketEndpoint, StreamSocketLimits, make_stream_socket_endpoint

if TYPE_CHECKING:
    from ..redis_conn import RedisConn

__all__ = [
    "MemoryStreamStore",
    "SqliteStreamStore",
    "StreamHub",
    "StreamSocketEndpoint",
    "StreamSocketLimits",
    "StreamStore",
    "Streams",
    "UnknownStream",
    "make_stream_socket_endpoint",
    "open_stream_store",
]


def open_stream_store(kind: Literal["sqlite", "memory", "redis"], data_dir: Path,
                      redis: RedisConn | None = None) -> StreamStore:
    """The project's stream store; `sqlite` keeps it in `<data_dir>/streams.db`, `redis` in the given Redis
    (call `start(hub)` before use so that changes reach the subscribers)."""
    if kind == "memory":
        return MemoryStreamStore()
    if kind == "sqlite":
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        return SqliteStreamStore(Path(data_dir) / "streams.db")
    if kind == "redis" and redis is not None:
        from .redis import RedisStreamStore  # redis-py is imported only by apps that use it

        return RedisStreamStore(redis)
    raise ValueError(f"unknown stream store kind {kind!r} (expected 'sqlite', 'memory' or 'redis' with a redis_url)")
