"""Newline framing of the runner protocol pipe (protocol/SPEC.md): bytes in, lines out; messages in, as few
writes as possible out. Batching never changes the wire: a batch is still one message per line.

Why not asyncio.StreamReader.readline: it wakes the reading task once per message (a future, a task step,
a buffer copy each). Here each chunk the pipe delivers is cut into all its complete lines at once, in the
protocol's data callback. Why not one transport write per message: uvloop issues a write(2) per call while
its buffer is empty, so a burst of n answers costs n syscalls on both sides of the pipe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol


class ByteWriter(Protocol):
    def write(self, data: bytes) -> None: ...


class LineTooLong(Exception):
    """A line (finished or not) passed the limit: the peer broke the protocol."""


class LineSplitter:
    """Hands every complete line of each chunk to `on_line` (without its newline; empty lines skipped), in
    order. A line may be up to `limit` bytes; a longer one, even before its newline arrives, raises
    LineTooLong once every line before it has been handed on, and nothing after it is."""

    def __init__(self, on_line: Callable[[bytes], None], limit: int) -> None:
        self._on_line, self._limit = on_line, limit
        self._partial = bytearray()  # the unfinished last line

    def feed(self, data: bytes) -> None:
        limit, on_line = self._limit, self._on_line
        if self._partial:
            nl = data.find(b"\n")
            if nl < 0:
                self._partial += data
                if len(self._partial) > limit:
                    raise LineTooLong
                return
            self._partial += data[:nl]
            if len(self._partial) > limit:
                raise LineTooLong
            line = bytes(self._partial)
            self._partial.clear()
            on_line(line)
            data = data[nl + 1:]
        lines = data.split(b"\n")
        tail = lines.pop()
        if len(data) > limit:  # some line might be too long: look at each (a rare, huge chunk)
            for line in lines:
                if len(line) > limit:
                    raise LineTooLong
                if line:
                    on_line(line)
        else:
            for line in lines:
                if line:
                    on_line(line)
        if tail:
            if len(tail) > limit:
                raise LineTooLong
            self._partial += tail

    def finish(self) -> None:
        """At EOF: the unfinished last line is still a message."""
        if self._partial:
            line = bytes(self._partial)
            self._partial.clear()
            self._on_line(line)


class TurnWriter:
    """Writes the messages of one event-loop turn with few writes: the first goes out at once (an idle
    connection gets no added latency), the rest are joined and written when the loop gets to the callback
    scheduled then, after everything else that was ready in that turn has run, or as soon as `flush_at`
    bytes are held (the peer starts on a long burst while the rest of it is still being produced)."""

    def __init__(self, writer: ByteWriter, loop: asyncio.AbstractEventLoop, flush_at: int = 32 * 1024) -> None:
        self._writer, self._loop, self._flush_at = writer, loop, flush_at
        self._held: list[bytes] | None = None  # None: nothing written this turn yet
        self._held_bytes = 0

    def write(self, data: bytes) -> None:
        held = self._held
        if held is None:
            self._held = []
            self._loop.call_soon(self._flush)
            self._writer.write(data)
            return
        held.append(data)
        self._held_bytes += len(data)
        if self._held_bytes >= self._flush_at:
            self._write_held()

    def _flush(self) -> None:
        self._write_held()
        self._held = None

    def _write_held(self) -> None:
        held = self._held
        if held:
            self._writer.write(held[0] if len(held) == 1 else b"".join(held))
            held.clear()
            self._held_bytes = 0
