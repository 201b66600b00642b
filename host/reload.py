"""Dev mode: when a file under steps/ or src/ changes, reload it in its runner and re-apply the project.

A step or stream file is loaded again by itself (a new file is loaded, a deleted one forgotten). Any
other file a runner may have imported (a service module, say) restarts that language's runner, which
reloads all of its files, since runners cache imported modules. A Motia project's motia.config at the
root (watched alone, not the whole root) and its local plugins' folders are watched too.
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
        self._applying = asyncio.Lock()

    def start(self) -> None:
        root = self.host.settings.root
        searched = [d for d in (root / f for f in SEARCHED) if d.is_dir()]
        plugins = [d for d in self.host.project.motia_plugin_dirs() if not any(d.is_relative_to(s) for s in searched)]
        dirs = [str(d) for d in (*searched, *plugins)]
        loop = asyncio.get_running_loop()
        if dirs:
            self._task = loop.create_task(self._watch(dirs))
        # the root itself only for motia.config (a recursive watch would cover node_modules)
        self._root_task = loop.create_task(self._watch([str(root)], recursive=False,
                                                       only=lambda _c, p: Path(p).name in CONFIG_NAMES))

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
        restart: set[str] = set()
        touched: list[str] = []
        for change, name in sorted(changes, key=lambda c: c[1]):
            path = Path(name)
            if path.name in CONFIG_NAMES and path.parent == self.host.settings.root:
                await project.reload_motia_config()
                touched.append(path.name)
                continue
            kind = classify(path, extra)
            if kind is None:
                spec = project.registry.for_file(path)
                if spec and spec.language in project.supervisors:
                    restart.add(spec.language)
                continue
            touched.append(project.rel(path))
            if change == Change.deleted or not path.exists():
                project.remove_file(path)
            else:
                await project.reload_file(SourceFile(path, kind))
        for language in sorted(restart):
            await project.supervisors[language].restart()
            touched.append(f"{language} runner")
        if not touched:
            return
        for step in project.steps.values():
            self.host.invoker.forget(step)
        self.host.refresh()
        took = (time.perf_counter() - started) * 1000
        self.host.logs.write("info", f"reloaded {', '.join(touched)} in {took:.0f} ms", source="reload")
        try:
            if regenerate_if_present(project, self.host.settings.root):
                self.host.logs.write("info", "regenerated types.d.ts and steppe_types.py", source="reload")
        except OSError as e:
            self.host.logs.write("warn", f"could not regenerate the types: {e}", source="reload")

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*(t for t in (self._task, self._root_task) if t), return_exceptions=True)


def _interesting(change: Change, path: str) -> bool:
    parts = Path(path).parts
    return not any(p in SKIPPED_DIRS or p.startswith(".") for p in parts[-6:]) and not path.endswith(
        (".pyc", "~", ".swp", ".tmp"))
