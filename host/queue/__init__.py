"""The delivery queue: one interface (base.py), one file per backend, the worker loop and its middleware."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .base import DeadLetter, Delivery, Queue, Subscription
from .memory import MemoryQueue
from .retries import Reject, backoff, with_retries
from .sqlite import SqliteQueue
from .worker import DeliveryWorker, StepPolicy

if TYPE_CHECKING:
    from ..redis_conn import RedisConn

__all__ = ["DeadLetter", "Delivery", "DeliveryWorker", "MemoryQueue", "Queue", "Reject", "Subscription", "SqliteQueue",
           "StepPolicy", "backoff", "open_queue", "with_retries"]


def open_queue(kind: str, data_dir: Path, redis: RedisConn | None = None, lease: float = 30.0) -> Queue:
    if kind == "sqlite":
        return SqliteQueue(data_dir / "queue.db")
    if kind == "memory":
        return MemoryQueue()
    if kind == "redis" and redis is not None:
        from .redis import RedisQueue  # redis-py is imported only by apps that use it

        return RedisQueue(redis, lease)
    raise ValueError(f"unknown bus {kind!r} (use sqlite, memory or redis)")
