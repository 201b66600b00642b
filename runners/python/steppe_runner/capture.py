"""Keeps stdout for the protocol and turns everything user code prints into `log` notifications.

Under the fds transport (STEPPE_RPC_FDS) the protocol has its own pipe pair and fd 1 is left alone: the host
captures raw writes to it as log lines. Under stdio, fd 1 is duplicated for the protocol and then pointed at
stderr, so even C-level writes to fd 1 cannot corrupt the stream; fd 0 is duplicated for the reader and
pointed at /dev/null, so a stray input() cannot swallow protocol lines. sys.stdout / sys.stderr become line
writers that tag each line with the invocation found in a context variable (copied into worker threads by the
runner).
"""

from __future__ import annotations

import contextvars
import io
import os
import sys
import threading
from typing import Any

from .jsonio import Output
from .redact import REDACTOR

current_invocation: contextvars.ContextVar[Any] = contextvars.ContextVar("steppe_invocation", default=None)


class LineCapture(io.TextIOBase):
    """A text stream that emits one log notification per complete line.

    Partial lines are kept per invocation so concurrent handlers printing piecemeal (print writes the
    text and the newline separately) never splice each other's output.
    """

    def __init__(self, out: Output, source: str, level: str, fd: int) -> None:
        self._out, self._source, self._level, self._fd = out, source, level, fd
        self._partial: dict[Any, str] = {}
        self._lock = threading.Lock()
        self.buffer = _BinaryCapture(self)

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        inv = current_invocation.get()
        with self._lock:
            pending = self._partial.pop(inv, None)
            text = pending + s if pending else s
            if "\n" not in text:
                if text:
                    self._partial[inv] = text
                return len(s)
            lines = text.split("\n")
            rest = lines.pop()
            if rest:
                self._partial[inv] = rest
        for line in lines:
            self._out.log(inv, self._level, REDACTOR.text(line[:-1] if line.endswith("\r") else line), self._source)
        return len(s)

    def finish(self, inv: Any) -> None:
        """Send what an invocation left without a newline."""
        if not self._partial:  # nobody left a line open (a read under the GIL; writers hold the lock)
            return
        with self._lock:
            rest = self._partial.pop(inv, None)
        if rest:
            self._out.log(inv, self._level, REDACTOR.text(rest), self._source)

    def finish_all(self) -> None:
        with self._lock:
            left, self._partial = self._partial, {}
        for inv, rest in left.items():
            self._out.log(inv, self._level, REDACTOR.text(rest), self._source)

    # the parts of the TextIO interface libraries commonly probe
    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    @property
    def errors(self) -> str:  # type: ignore[override]
        return "replace"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        # both fds lead to the real stderr: raw writes (faulthandler, subprocesses) land there
        return self._fd

    def flush(self) -> None:
        # a flush does not end a line: print("x", end="", flush=True) stays part of the next line
        pass


class _BinaryCapture(io.RawIOBase):
    """sys.stdout.buffer: bytes written here are decoded and captured like text."""

    def __init__(self, text: LineCapture) -> None:
        self._text = text

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self._text.write(data.decode("utf-8", "replace"))
        return len(data)


class Stdio:
    """The redirected standard streams of the runner process."""

    def __init__(self, rpc_fds: tuple[int, int] | None = None) -> None:
        if rpc_fds:  # protocol 1.1: a private pipe pair; fd 1 stays the host's capture of raw stdout
            self.proto_in, self.proto_out = rpc_fds
            for fd in rpc_fds:
                os.set_inheritable(fd, False)  # a handler's child processes must not get the protocol
        else:
            self.proto_in = os.dup(0)
            self.proto_out = os.dup(1)
            os.dup2(2, 1)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        self.out = Output(self.proto_out)
        self.stdout = LineCapture(self.out, "stdout", "info", 1)
        self.stderr = LineCapture(self.out, "stderr", "warn", 2)
        sys.stdout = self.stdout
        sys.stderr = self.stderr

    def finish(self, inv: Any) -> None:
        self.stdout.finish(inv)
        self.stderr.finish(inv)

    def finish_all(self) -> None:
        self.stdout.finish_all()
        self.stderr.finish_all()
