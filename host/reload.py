"""Dev mode: when a file under steps/ or src/ changes, reload it in its runner and re-apply the project.

A step or stream file is loaded again by itself (a new file is loaded, a deleted one forgotten). Any
other file a runner may have imported (a service module, say) restarts that language's runner, which
reloads all of its files, since runners cache imported modules. A Motia project's motia.config at the
root (watched alone, not the whole root) and its local plugins' folders are watched too.

A file that failed to load (a missing package, a syntax error) is retried on every reload, and when the
project's dependencies change: a manifest or lockfile at the root (package.json, requirements.txt, ...), or
the top level of node_modules, python_modules or the project's .venv site-packages. A dependency change
restarts the runners of the languages with failed files first, since runners cache module resolution.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from watchfiles import Change, awatch

from .discovery import SEARCHED, SKIPPED_DIRS, SourceFile, classify
from .invoker import Invoker
from .logs import LogBook
from .motia_config import CONFIG_NAMES
from .project import Project
from .settings import Settings
from .typegen import regenerate_if_present

# files at the project root whose change means installed packages changed (watched alone, like motia.config)
DEPENDENCY_FILES = frozenset({
    "package.json", "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml", "bun.lockb",
    "requirements.txt", "pyproject.toml", "poetry.lock", "uv.lock", "Pipfile.lock", "Gemfile", "Gemfile.lock"})
# folders packages are installed into: their top level is watched (a new package is a new entry there)
DEPENDENCY_DIRS = ("node_modules", "python_modules", ".venv")


def dependency_dirs(root: Path) -> list[Path]:
    """The installed-package folders of a project that exist now (a .venv's site-packages, not the .venv)."""
    found = [root / d for d in ("node_modules", "python_modules") if (root / d).is_dir()]
    found += sorted((root / ".venv").glob("lib/python*/site-packages"))
    return found


class ReloadTarget(Protocol):
    """What a reload touches (the Host, without importing it): files go to the project, cached schema
    validators are forgotten, and the routes, subscriptions and schedules are rebuilt by refresh()."""

    settings: Settings
    project: Project
    invoker: Invoker
    logs: LogBook

    def refresh(self) -> None: ...


class DevReloader:
    def __init__(self, host: ReloadTarget) -> None:
        self.host = host
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._root_task: asyncio.Task[None] | None = None
        self._deps_task: asyncio.Task[None] | None = None
        self._applying = asyncio.Lock()

    def start(self) -> None:
        root = self.host.settings.root
        searched = [d for d in (root / f for f in SEARCHED) if d.is_dir()]
        plugins = [d for d in self.host.project.motia_plugin_dirs() if not any(d.is_relative_to(s) for s in searched)]
        dirs = [str(d) for d in (*searched, *plugins)]
        loop = asyncio.get_running_loop()
        if dirs:
            self._task = loop.create_task(self._watch(dirs))
        # the root itself only for motia.config and dependency files (a recursive watch would cover
        # node_modules); the package folders' top level for installs
        root_names = {*CONFIG_NAMES, *DEPENDENCY_FILES, *DEPENDENCY_DIRS}
        self._root_task = loop.create_task(self._watch([str(root)], recursive=False,
                                                       only=lambda _c, p: Path(p).name in root_names))
        if packages := [str(d) for d in dependency_dirs(root)]:
            self._deps_task = loop.create_task(self._watch(packages, recursive=False, only=lambda _c, _p: True))

    async def _watch(self, dirs: list[str], recursive: bool = True,
                     only: Callable[[Change, str], bool] | None = None) -> None:
        # debounce/step in ms: small, so an edit answers within a fraction of a second
        async for changes in awatch(*dirs, debounce=50, step=10, stop_event=self._stop,
                                    watch_filter=only or _interesting, recursive=recursive):
            try:
                await self.apply(changes)
            except Exception as e:  # a reload problem must not end the watching
                self.host.logs.write("error", f"reload failed: {type(e).__name__}: {e}", source="reload")

    async def apply(self, changes: set[tuple[Change, str]]) -> None:
        async with self._applying:  # the root watch and the folders' watch may fire together
            await self._apply(changes)

    async def _apply(self, changes: set[tuple[Change, str]]) -> None:
        started = time.perf_counter()
        project, extra = self.host.project, self.host.project.registry.extra_extensions()
        root = self.host.settings.root
        restart: set[str] = set()
        touched: list[str] = []
        loaded: list[Path] = []  # step and stream files loaded again: the log says which of them failed
        dependencies = False
        for change, name in sorted(changes, key=lambda c: c[1]):
            path = Path(name)
            if path.parent == root and path.name in CONFIG_NAMES:
                await project.reload_motia_config()
                touched.append(path.name)
                continue
            if (path.parent == root and path.name in DEPENDENCY_FILES | set(DEPENDENCY_DIRS)) or \
                    path.parent in dependency_dirs(root):
                dependencies = True
                continue
            kind = classify(path, extra)
            if kind is None:
                language = project.registry.language_of(path)
                if language and language in project.supervisors:
                    restart.add(language)
                continue
            touched.append(project.rel(path))
            if change == Change.deleted or not path.exists():
                project.remove_file(path)
            else:
                await project.reload_file(SourceFile(path, kind))
                loaded.append(path)
        retry = [f for f in project.failed_files() if f.path not in loaded]
        if dependencies:  # runners cache module lookups: a fresh one sees the newly installed packages
            for f in retry:
                if (language := project.registry.language_of(f.path)) and language in project.supervisors:
                    restart.add(language)
        for language in sorted(restart):
            await project.supervisors[language].restart()
            touched.append(f"{language} runner")
        if not touched and not (dependencies and retry):
            return
        for f in retry:  # any reload (and a dependency change) retries what did not load
            await project.reload_file(f)
            loaded.append(f.path)
        for step in project.steps.values():
            self.host.invoker.forget(step)
        self.host.refresh()
        took = (time.perf_counter() - started) * 1000
        self._log_outcome(touched, loaded, [f.path for f in retry], took, dependencies)
        try:
            if regenerate_if_present(project, self.host.settings.root):
                self.host.logs.write("info", "regenerated types.d.ts and steppe_types.py", source="reload")
        except OSError as e:
            self.host.logs.write("warn", f"could not regenerate the types: {e}", source="reload")

    def _log_outcome(self, touched: list[str], loaded: list[Path], retried: list[Path], took: float,
                     dependencies: bool) -> None:
        """"reloaded" only for what loaded; a file that still fails is said to fail (its error was logged)."""
        project = self.host.project
        failed = {str(f.path) for f in project.failed_files()}
        bad = [project.rel(p) for p in dict.fromkeys(loaded) if str(p) in failed]
        fixed = [project.rel(p) for p in retried if str(p) not in failed]
        good = [t for t in touched if t not in bad and t not in fixed]
        why = "the dependencies changed" if dependencies else "a reload"
        if good:
            self.host.logs.write("info", f"reloaded {', '.join(good)} in {took:.0f} ms", source="reload")
        if fixed:
            self.host.logs.write("info", f"loaded {', '.join(fixed)} (it failed before; retried after {why})",
                                 source="reload")
        for rel in bad:
            self.host.logs.write("error", f"{rel} did not load (see the error above); its route answers 503 until "
                                 "it loads, retried when a file or the dependencies change", source="reload")

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*(t for t in (self._task, self._root_task, self._deps_task) if t),
                             return_exceptions=True)


def _interesting(change: Change, path: str) -> bool:
    parts = Path(path).parts
    return not any(p in SKIPPED_DIRS or p.startswith(".") for p in parts[-6:]) and not path.endswith(
        (".pyc", "~", ".swp", ".tmp"))
