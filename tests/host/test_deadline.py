"""Waiting for a runner's answer (host/runners/deadline.py): the answer ends the wait, a timeout fires
never early, and neither a timeout nor a cancelled caller cancels the answer's future (the runner still
owes it; the supervisor asks the runner to cancel and waits for it)."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

from steppe.rpc import ConnectionLost, RpcConnection
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


def test_answered_waits_leave_at_most_the_newest_slot_and_its_timer_behind():
    """Seen in bench S8 (host RSS growing burst after burst): each slot kept its timer and its emptied dict
    until its deadline, 30 s after a burst of answered invocations. Only the newest slot may stay, for the
    waits that are likely to join it next (one request at a time made and cancelled a timer per request)."""
    async def main() -> None:
        loop = asyncio.get_running_loop()
        slots = deadlines(loop)
        for _ in range(3):  # bursts in different slots
            futures = [loop.create_future() for _ in range(200)]
            waits = [asyncio.ensure_future(settled(f, 30.0)) for f in futures]
            await asyncio.sleep(0)
            assert len(slots) >= 1
            for f in futures:
                f.set_result(None)
            assert all(await asyncio.gather(*waits))
            assert len(slots) <= 1
            pending_timers = [h for h in getattr(loop, "_scheduled", []) if not h.cancelled()]
            assert len(pending_timers) <= 1
            await asyncio.sleep(2 * SLOT)

    asyncio.run(main())


def test_waits_one_after_another_share_the_newest_slots_timer():
    async def main() -> None:
        loop = asyncio.get_running_loop()
        slots = deadlines(loop)
        made = []
        call_at = loop.call_at

        def counting_call_at(*args: Any) -> asyncio.TimerHandle:
            made.append(args)
            return call_at(*args)

        loop.call_at = counting_call_at  # type: ignore[method-assign]
        start = loop.time()
        while loop.time() - start < SLOT / 2:  # sequential waits, as under one request at a time
            answer = loop.create_future()
            loop.call_soon(answer.set_result, None)
            assert await settled(answer, 30.0)
        assert len(made) <= 2 and len(slots) <= 1  # one slot per window passed, not one per wait

    asyncio.run(main())


def test_a_wait_woken_by_the_connection_ends_with_the_answer_or_the_connection():
    """RpcConnection.wake_on_answer wakes the wait in the callback that settles the answer."""
    async def main() -> None:
        written: list[bytes] = []

        class Pipe:
            def write(self, data: bytes) -> None:
                written.append(data)

        rpc = RpcConnection(Pipe(), on_request=None, on_notification=lambda m, p: None,  # type: ignore[arg-type]
                            on_garbage=lambda line, why: None, limit=1 << 16)
        rid, answer = rpc.request("invoke", {})
        waiting = asyncio.ensure_future(settled(answer, 5.0, partial(rpc.wake_on_answer, rid)))
        await asyncio.sleep(0)
        rpc.feed_data(b'{"jsonrpc":"2.0","id":%d,"result":7}\n' % rid)
        assert await waiting is True and answer.result() == 7

        rid, silent = rpc.request("invoke", {})
        assert await settled(silent, 0.02, partial(rpc.wake_on_answer, rid)) is False and not silent.done()
        rpc.forget(rid)

        rid, lost = rpc.request("invoke", {})
        waiting = asyncio.ensure_future(settled(lost, 5.0, partial(rpc.wake_on_answer, rid)))
        await asyncio.sleep(0)
        rpc.close("runner gone")
        assert await waiting is True and isinstance(lost.exception(), ConnectionLost)

    asyncio.run(main())
