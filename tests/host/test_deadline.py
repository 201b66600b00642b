"""Waiting for a runner's answer (host/runners/deadline.py): the answer ends the wait, a timeout fires
never early, and neither a timeout nor a cancelled caller cancels the answer's future (the runner still
owes it; the supervisor asks the runner to cancel and waits for it)."""

from __future__ import annotations

import asyncio

from steppe.runners.deadline import SLOT, deadlines, settled


def test_an_answer_ends_the_wait_and_a_timeout_never_cancels_it():
    async def main() -> None:
        loop = asyncio.get_running_loop()
        answered = loop.create_future()
        loop.call_later(0.01, answered.set_result, 42)
        assert await settled(answered, 5.0) is True and answered.result() == 42

        silent = loop.create_future()
        t0 = loop.time()
        assert await settled(silent, 0.05) is False
        assert loop.time() - t0 >= 0.05 - 1e-3  # never early (late by up to SLOT plus the loop's own delay)
        assert not silent.done()

        # many waits share slots; each one still ends on its own answer or its own deadline
        futures = [loop.create_future() for _ in range(50)]
        waits = [asyncio.ensure_future(settled(f, 0.02 + i * SLOT / 5)) for i, f in enumerate(futures)]
        for f in futures[::2]:
            f.set_result(None)
        assert await asyncio.gather(*waits) == [i % 2 == 0 for i in range(50)]

    asyncio.run(main())


def test_a_cancelled_caller_leaves_the_answer_pending():
    async def main() -> None:
        loop = asyncio.get_running_loop()
        answer = loop.create_future()
        waiting = asyncio.ensure_future(settled(answer, 10.0))
        await asyncio.sleep(0.01)
        waiting.cancel()
        try:
            await waiting
        except asyncio.CancelledError:
            pass
        assert waiting.cancelled() and not answer.done()
        answer.set_result("late")  # the runner's answer still arrives where the supervisor can see it
        assert answer.result() == "late"

    asyncio.run(main())


def test_answered_waits_leave_no_slot_or_timer_behind():
    """Seen in bench S8 (host RSS growing burst after burst): each slot kept its timer and its emptied dict
    until its deadline, 30 s after a burst of answered invocations."""
    async def main() -> None:
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in range(200)]
        waits = [asyncio.ensure_future(settled(f, 30.0)) for f in futures]
        await asyncio.sleep(0)
        slots = deadlines(loop)
        assert len(slots) >= 1
        for f in futures:
            f.set_result(None)
        assert all(await asyncio.gather(*waits))
        assert len(slots) == 0
        pending_timers = [h for h in getattr(loop, "_scheduled", []) if not h.cancelled()]
        assert pending_timers == []

    asyncio.run(main())
