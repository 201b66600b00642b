"""A runner's own stdout and stderr (whatever reaches fds 1 and 2 outside its in-process capture: a C
extension, a child process, a raw write) split into log lines."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

LineSink = Callable[[int, str], None]


class OutputLines:
    """Splits the bytes of each fd into lines; an unfinished line is sent once it passes `max_line` bytes
    (so a writer that never ends its line cannot grow the buffer), once nothing more arrived for `idle`
    seconds (a raw write without a newline still shows), or when the fd closes."""

    def __init__(self, sink: LineSink, max_line: int, idle: float = 0.2) -> None:
        self._sink, self._max, self._idle = sink, max_line, idle
        self._partial: dict[int, bytearray] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}

    def feed(self, fd: int, data: bytes) -> None:
        if timer := self._timers.pop(fd, None):
            timer.cancel()
        self._split(fd, data)
        if self._partial.get(fd):
            self._timers[fd] = asyncio.get_running_loop().call_later(self._idle, self.end, fd)

    def _split(self, fd: int, data: bytes) -> None:
        buf = self._partial.setdefault(fd, bytearray())
        buf += data
        start = 0
        while (nl := buf.find(b"\n", start)) >= 0:
            self._send(fd, buf[start:nl])
            start = nl + 1
        del buf[:start]
        while len(buf) > self._max:
            self._send(fd, buf[:self._max])
            del buf[:self._max]

    def end(self, fd: int) -> None:
        if timer := self._timers.pop(fd, None):
            timer.cancel()
        if buf := self._partial.pop(fd, None):
            self._send(fd, buf)

    def _send(self, fd: int, line: bytes | bytearray) -> None:
        self._sink(fd, bytes(line).decode(errors="replace").rstrip("\r"))
