"""Deliveries queued for a step the project no longer has (renamed, removed, or in a file that does not load):
they stay queued, and run when a step of that name is back. Nothing takes them meanwhile, so they are told of
at start and after each reload, never silently left in the queue."""

from __future__ import annotations

from collections.abc import Iterable

from .db import StorageError
from .queue import Queue


async def steps_gone(queue: Queue, names: Iterable[str]) -> dict[str, int]:
    """{step: deliveries} for the steps with deliveries that are not among `names`."""
    try:
        gone = await queue.waiting_elsewhere(set(names))
    except StorageError:
        return {}  # the store reports its own faults (health)
    return dict(sorted(gone.items()))


def describe(gone: dict[str, int], unnamed: int) -> str:
    listed = ", ".join(f"{n} for {step!r}" for step, n in gone.items())
    why = (f"; {unnamed} step file(s) did not load, and one of them may be it" if unnamed else "")
    return (f"deliveries wait for steps this project does not have now ({listed}): renamed or removed{why}. "
            "They stay queued and run when a step of that name is back; `steppe events` lists them")
