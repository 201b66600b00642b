"""uvicorn's server as the host runs it: a signal asks it to stop, and the host then drains in order."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from typing import Any

import uvicorn

# SIGHUP too: the terminal of `steppe dev` closed (its default action would end the host without a drain)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class SignalledServer(uvicorn.Server):
    """uvicorn re-raises SIGTERM/SIGINT after serving, which would end the process before the host drains
    its runners; here a signal only asks the server to stop, and the host shuts down in order after it."""

    on_exit: list[Any] = []  # called when a signal asks the server to stop (before it waits for responses)
    on_listening: list[Any] = []  # called once the sockets listen

    async def startup(self, sockets: list[Any] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            for hook in self.on_listening:
                hook()

    def handle_exit(self, sig: int, frame: Any) -> None:
        for hook in self.on_exit:
            hook()
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)
