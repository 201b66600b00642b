"""A small tmpfs for disk-full and read-only tests, and a way to fill it to the last byte.

Mounting needs CAP_SYS_ADMIN (root in most containers): without it the test is skipped with the reason,
and under CI it fails only when the process has that capability (so it could have mounted)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import IN_CI

_CAP_SYS_ADMIN = 21


def _can_mount() -> bool:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> _CAP_SYS_ADMIN & 1)
    return False


@contextmanager
def small_tmpfs(size: str = "4m") -> Iterator[Path]:
    where = Path(tempfile.mkdtemp(prefix="steppe-tmpfs-"))
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        where.rmdir()
        reason = f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}"
        if IN_CI and _can_mount():
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
        where.rmdir()


def remount_read_only(where: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)


def fill(where: Path) -> Path:
    """Write a filler file until the filesystem has no byte left; delete it to give the space back."""
    filler = where / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for chunk in (1 << 16, 4096, 512, 1):
            block = b"x" * chunk
            try:
                while True:
                    os.write(fd, block)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler
