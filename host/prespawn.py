"""Runners spawned first: `steppe start` and `steppe dev` start the runners their project needs before the
host imports asyncio, its web layer and its stores (some 80 ms of imports), so the runners' own start-up
runs beside the host's instead of after it. Only light modules are imported here.

Nothing here talks to a runner: the RunnerProcess of each language adopts the process spawned for it when
its command and environment are exactly those it would use itself (`adopt`), and spawns its own otherwise.
Whatever was not adopted once the project has loaded is killed (`discard`). Anything that goes wrong here
spawns nothing: the host's own start then reports it as usual."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .discovery import discover
from .runners.limits import check_line_limits
from .runners.registry import RunnerRegistry, RunnerSpec
from .settings import Settings


@dataclass
class PreSpawned:
    """A runner process spawned for a language (fds transport), not yet adopted."""

    command: list[str]
    env: dict[str, str]
    popen: subprocess.Popen[bytes]
    to_runner: int  # our ends of its protocol pipe pair
    from_runner: int

    def kill(self) -> None:
        """Kill its process group (it leads it), reap it, close our ends of its pipes."""
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.popen.wait()
        for f in (self.popen.stdout, self.popen.stderr):
            if f is not None:
                f.close()
        for fd in (self.to_runner, self.from_runner):
            os.close(fd)

    @property
    def stdout(self) -> IO[bytes]:
        assert self.popen.stdout is not None
        return self.popen.stdout

    @property
    def stderr(self) -> IO[bytes]:
        assert self.popen.stderr is not None
        return self.popen.stderr


_spawned: dict[str, PreSpawned] = {}


def runner_env(spec: RunnerSpec, project_root: Path, max_line: int) -> dict[str, str]:
    """The environment a runner starts with (STEPPE_RPC_FDS aside, which names its pipes)."""
    env = {**os.environ, "STEPPE_PROJECT_ROOT": str(project_root), "STEPPE_RUNNER_NAME": spec.language,
           "STEPPE_MAX_LINE": str(max_line), **spec.env}
    env.pop("STEPPE_RPC_FDS", None)
    return env


def export_redact_keys(settings: Settings) -> None:
    """The keys every runner's logger redacts: runners inherit them, so they are set before any spawn."""
    from .redact import parse_keys

    os.environ["STEPPE_REDACT_KEYS"] = ",".join(parse_keys(settings.redact_keys))


def spawn_fds_runner(command: list[str], env: dict[str, str], cwd: Path) -> tuple[subprocess.Popen[bytes], int, int]:
    """A runner process with a private protocol pipe pair (fds transport), in its own session; returns it
    and our ends of the pipes (to it, from it)."""
    to_runner_r, to_runner_w = os.pipe()
    from_runner_r, from_runner_w = os.pipe()
    try:
        popen = subprocess.Popen(command, cwd=cwd, env={**env, "STEPPE_RPC_FDS": f"{to_runner_r},{from_runner_w}"},
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 pass_fds=(to_runner_r, from_runner_w), start_new_session=True)
    except BaseException:
        os.close(to_runner_w)
        os.close(from_runner_r)
        raise
    finally:
        os.close(to_runner_r)
        os.close(from_runner_w)
    return popen, to_runner_w, from_runner_r


def spawn_early(settings: Settings) -> None:
    """Spawn the built-in runners the project's files need, when their runtimes were probed before (a probe
    is an interpreter start of its own: then the host's usual start does it, in a thread)."""
    if not hasattr(os, "pidfd_open"):  # the adopting host notices the process's exit through a pidfd
        return
    try:
        check_line_limits(settings)  # a host that will refuse to start spawns nothing
        export_redact_keys(settings)
        registry = RunnerRegistry(python=settings.python_executable(), extra=settings.runners,
                                  project_root=settings.root)
        languages = {registry.language_of(f.path) for f in discover(settings.root, registry.extra_extensions())}
        for language in sorted(lang for lang in languages if lang is not None):
            spec = registry.cached(language)
            if spec is None or spec.transport != "fds" or spec.unavailable or not spec.command:
                continue
            env = runner_env(spec, settings.root, settings.max_line)
            popen, to_runner, from_runner = spawn_fds_runner(spec.command, env, settings.root)
            _spawned[language] = PreSpawned(list(spec.command), env, popen, to_runner, from_runner)
    except Exception:  # noqa: BLE001 - a best effort: the host's own start spawns and reports as usual
        discard()


def adopt(language: str, command: list[str], env: dict[str, str]) -> PreSpawned | None:
    """The process spawned early for `language`, if it runs exactly this command with this environment and
    is still alive; it is then the caller's. A mismatch or a dead one is killed."""
    pre = _spawned.pop(language, None)
    if pre is None:
        return None
    if pre.command == command and pre.env == env and pre.popen.poll() is None:
        return pre
    pre.kill()
    return None


def discard() -> None:
    """Kill every runner spawned early and not adopted (the project did not need it after all)."""
    while _spawned:
        _spawned.popitem()[1].kill()
