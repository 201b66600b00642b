"""Retries as middleware around the delivery handler: exponential backoff with full jitter, then the
dead-letter store. A `Reject` (e.g. input failing its schema) goes to the dead-letter store at once."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

from ..db import StorageError
from .base import Delivery, Queue
from .worker import Handler, StepPolicy, Unrecorded


class Reject(Exception):
    """The delivery can never succeed as it is: no retries."""


def backoff(attempt: int, base: float, cap: float, rand: Callable[[], float] = random.random) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2^(attempt-1))] before retry number `attempt`."""
    return rand() * min(cap, base * 2 ** min(max(0, attempt - 1), 60))  # past 2^60 only the cap matters


def describe(e: BaseException) -> tuple[str, str]:
    """(error line, stack) of a failure, whether it came from a runner (RpcError) or the host."""
    kind = getattr(e, "type", None) or type(e).__name__
    message = getattr(e, "message", None) or str(e)
    return (f"{kind}: {message}" if message else kind), str(getattr(e, "stack", "") or "")


async def _record(op: Callable[..., Awaitable[None]], *args: Any) -> None:
    """Write a delivery's outcome; when the store cannot, hand the write to the worker to do again."""
    try:
        await op(*args)
    except StorageError as e:
        raise Unrecorded(lambda: op(*args), e) from None


def with_retries(inner: Handler, queue: Queue, *, base: float, cap: float, wake: Callable[[float], None],
                 on_dead: Callable[[Delivery, str], None] | None = None) -> Handler:
    async def handle(delivery: Delivery, policy: StepPolicy) -> None:
        try:
            await inner(delivery, policy)
        except asyncio.CancelledError:
            raise  # shutting down: the lease stays in the journal and runs again after restart
        except Reject as e:
            await _record(queue.bury, delivery, f"rejected: {e}")
            if on_dead:
                on_dead(delivery, f"rejected: {e}")
        except Exception as e:
            error, stack = describe(e)
            if delivery.attempts >= policy.max_attempts:
                await _record(queue.bury, delivery, error, stack)
                if on_dead:
                    on_dead(delivery, error)
            else:
                delay = backoff(delivery.attempts, base, cap)
                await _record(queue.retry, delivery, delay, error)
                wake(delay)
        else:
            await _record(queue.ack, delivery)

    return handle
