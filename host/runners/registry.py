"""Which runner runs a file: extension → language → command. Adding a language is an entry here
(built in) or in `steppe.toml` (`[runners.<lang>] command = [...], extensions = [...], transport = "fds"`), never a
host change."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .probe_cache import NotCached, probe_output


def _runners_dir() -> Path:
    """Where the built-in runners live: STEPPE_RUNNERS_DIR if set; in an installed wheel, `steppe/_runners`
    (the build copies the repo's runners/ there, see setup.py); in a source checkout, the repo's runners/."""
    if configured := os.environ.get("STEPPE_RUNNERS_DIR"):
        return Path(configured)
    here = Path(__file__).resolve()
    packaged = here.parents[1] / "_runners"
    return packaged if packaged.is_dir() else here.parents[2] / "runners"


RUNNERS_DIR = _runners_dir()


@dataclass
class RunnerSpec:
    language: str
    command: list[str]
    extensions: tuple[str, ...]
    unavailable: str | None = None  # why this runner cannot start on this machine
    env: dict[str, str] = field(default_factory=dict)
    # "fds": protocol on a private pipe pair named in STEPPE_RPC_FDS (protocol 1.1, the built-in runners);
    # "stdio": protocol on stdin/stdout (protocol 1.0 runners, the default for a project's own runners)
    transport: str = "fds"
    # a built-in runner's interpreter is found by running it (version checks): until then, `probe` gives
    # (command, why unavailable) and the spec is not usable; RunnerRegistry.get/resolve run it once
    probe: Callable[[bool], tuple[list[str], str | None]] | None = field(default=None, repr=False, compare=False)


TRANSPORTS = ("fds", "stdio")


def _node_probe(node: str, cached_only: bool) -> tuple[int, bool] | None:
    """`node`'s major version and whether it has `module.register` (Node >= 18.19 / 20.6), in one run."""
    try:
        out = probe_output(node, ["-p", "process.versions.node + ' ' + typeof require('module').register"],
                           cached_only=cached_only)
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.match(r"(\d+)\.\S* (\w+)", out.strip())
    return (int(m.group(1)), m.group(2) == "function") if m else None


def _node_command(cached_only: bool) -> tuple[str | None, str | None, list[str]]:
    """`node` >= 18 from PATH, else the binary the nodejs-bin package ships; with the flags it needs.

    The Node runner's ES module hooks (TypeScript, loose relative imports) install themselves through
    `module.register`; a Node without it (nodejs-bin ships 18.4) gets them on its command line instead, with
    --no-warnings against the "experimental loader" notice it prints at start (the runner prints every other
    warning itself, runners/node/lib/esm.js)."""
    for node in _node_candidates():
        probe = _node_probe(node, cached_only)
        if probe is None or probe[0] < 18:
            continue
        hooks = (RUNNERS_DIR / "node" / "lib" / "esm_hooks.mjs").as_uri()
        return node, None, [] if probe[1] else ["--no-warnings", "--experimental-loader", hooks]
    return None, "Node.js >= 18 not found on PATH and the nodejs-bin package is not installed", []


def _node_candidates() -> Iterator[str]:
    """`node` from PATH, then nodejs-bin's: imported only when PATH has none that will do (4 ms at start)."""
    if found := shutil.which("node"):
        yield found
    try:
        import nodejs  # type: ignore[import-untyped]
    except ImportError:
        return
    yield str(Path(nodejs.__file__).parent / "bin" / "node")


def _ruby_command(cached_only: bool) -> tuple[str | None, str | None]:
    found = shutil.which("ruby")
    if not found:
        return None, "Ruby not found on PATH (install ruby >= 3.0 to run .rb steps)"
    try:
        out = probe_output(found, ["-e", "print RUBY_VERSION"], cached_only=cached_only)
        if int(out.split(".")[0]) < 3:
            return None, f"Ruby {out} found, Steppe needs >= 3.0"
    except (OSError, subprocess.SubprocessError, ValueError):
        return None, f"could not run {found}"
    return found, None


def _node_spec(cached_only: bool = False) -> tuple[list[str], str | None]:
    node, why, node_flags = _node_command(cached_only)
    # a small young generation: V8 otherwise keeps growing RSS after bursts (16 MB semi-spaces) that
    # it never returns; 4 MB held RSS flat across repeated event bursts (bench S8) at no throughput cost
    return [node or "node", "--max-semi-space-size=4", *node_flags, str(RUNNERS_DIR / "node" / "runner.js")], why


# glibc raises its mmap and trim thresholds to the size of the largest mmapped block freed so far (up to
# 32 MiB): after a handler has built and dropped a big container once, the next one comes from the heap and,
# freed, stays in RSS as the heap's free top (the Python runner kept ~2.5 MB more after the second S4 burst
# in bench S8, whose tally step builds a set of 20,000 ints per burst). Fixed thresholds, glibc's own
# starting values, keep returning it, at no measurable cost per message (bench S4, S5). The runner hands its
# children the user's own GLIBC_TUNABLES back (STEPPE_USER_GLIBC_TUNABLES); a user's settings come after
# these, so theirs win.
PYTHON_MALLOC_TUNABLES = "glibc.malloc.trim_threshold=131072:glibc.malloc.mmap_threshold=131072"


def _python_env() -> dict[str, str]:
    user = os.environ.get("GLIBC_TUNABLES", "")
    return {"GLIBC_TUNABLES": f"{PYTHON_MALLOC_TUNABLES}:{user}" if user else PYTHON_MALLOC_TUNABLES,
            "STEPPE_USER_GLIBC_TUNABLES": user}


def _ruby_spec(cached_only: bool = False) -> tuple[list[str], str | None]:
    ruby, why = _ruby_command(cached_only)
    # without RubyGems, which the runner loads on a project's first need (lazy_gems.rb): 40 ms of Ruby's 50 ms
    # start; unless RUBYOPT is set (e.g. -rbundler/setup from `bundle exec`), which may need it at once
    gems = [] if os.environ.get("RUBYOPT") else ["--disable-gems"]
    return [ruby or "ruby", *gems, str(RUNNERS_DIR / "ruby" / "runner.rb")], why


def _apply_probe(spec: RunnerSpec, found: tuple[list[str], str | None]) -> None:
    if spec.probe is None:  # another caller applied it meanwhile
        return
    spec.command, spec.unavailable, spec.probe = found[0], found[1], None


def runner_options(entry: dict[str, Any], root: Path) -> dict[str, str]:
    """The environment carrying a built-in runner's steppe.toml options: `preload`, files (relative to
    the project root) each runner runs once before loading any step, e.g. to define shared globals."""
    preload = entry.get("preload", [])
    if not isinstance(preload, list) or not all(isinstance(p, str) for p in preload):
        raise ValueError("[runners.<language>] preload must be a list of file paths")
    return {"STEPPE_PRELOAD": json.dumps([str((root / p).resolve()) for p in preload])} if preload else {}


class RunnerRegistry:
    def __init__(self, python: str | None = None, extra: dict[str, dict[str, Any]] | None = None,
                 project_root: Path | None = None) -> None:
        self._specs: dict[str, RunnerSpec] = {}
        self._resolved = False
        self._python = python or sys.executable
        self._extra = extra or {}
        self._root = project_root or Path.cwd()

    def _resolve(self) -> None:
        # Probing node/ruby costs a subprocess each: only when a file needs that runner, and (resolve) off
        # the event loop, so the probes run beside each other and beside the runners already starting.
        if self._resolved:
            return
        self._resolved = True
        self.add(RunnerSpec("python", [self._python, str(RUNNERS_DIR / "python" / "runner.py")], (".py",),
                            env=_python_env()))
        self.add(RunnerSpec("node", [], (".ts", ".mts", ".cts", ".js", ".mjs", ".cjs"), probe=_node_spec))
        self.add(RunnerSpec("ruby", [], (".rb",), probe=_ruby_spec))
        for lang, entry in self._extra.items():
            if "command" not in entry and lang in self._specs:  # options of a built-in runner
                self._specs[lang].env.update(runner_options(entry, self._root))
                continue
            command = [str(self._root / c) if c.startswith(("./", "runners/")) else c
                       for c in entry["command"]]
            transport = str(entry.get("transport", "stdio"))
            # a built-in's own command keeps its file types unless the table names others
            builtin = self._specs[lang].extensions if lang in self._specs else ()
            self.add(RunnerSpec(lang, command, tuple(entry.get("extensions", builtin)),
                                env={k: str(v) for k, v in entry.get("env", {}).items()}, transport=transport,
                                unavailable=None if transport in TRANSPORTS else
                                f"[runners.{lang}] transport must be \"fds\" or \"stdio\", not {transport!r}"))

    def add(self, spec: RunnerSpec) -> None:
        for lang, old in list(self._specs.items()):
            # a later entry for an extension takes it over (a project may replace a built-in runner)
            remaining = tuple(e for e in old.extensions if e not in spec.extensions)
            if lang != spec.language and remaining != old.extensions:
                self._specs[lang] = replace(old, extensions=remaining)
        self._specs[spec.language] = spec

    def language_of(self, path: Path) -> str | None:
        """The language whose runner handles this file (no probe runs for it)."""
        self._resolve()
        return next((spec.language for spec in self._specs.values() if path.name.endswith(spec.extensions)), None)

    def for_file(self, path: Path) -> RunnerSpec | None:
        language = self.language_of(path)
        return None if language is None else self.get(language)

    def extra_extensions(self) -> tuple[str, ...]:
        return tuple(e for entry in self._extra.values() for e in entry.get("extensions", ()))

    def get(self, language: str) -> RunnerSpec:
        self._resolve()
        spec = self._specs[language]
        if spec.probe is not None:
            _apply_probe(spec, spec.probe(False))
        return spec

    def cached(self, language: str) -> RunnerSpec | None:
        """As get, when no probe has to run (its answer is in the probe cache); None when one would."""
        self._resolve()
        spec = self._specs[language]
        if spec.probe is not None:
            try:
                _apply_probe(spec, spec.probe(True))
            except NotCached:
                return None
        return spec

    async def resolve(self, language: str) -> RunnerSpec:
        """As get, with the runtime probe (a subprocess) in a thread: the event loop, and the other
        languages' runners, go on meanwhile. A binary probed before is answered from the cache, here: a
        thread would wait for the GIL while the host imports its modules (tens of ms at start)."""
        import asyncio  # here: prespawn.py uses this module before the host imports asyncio

        spec = self.cached(language)
        if spec is None:
            spec = self._specs[language]
            if spec.probe is not None:
                _apply_probe(spec, await asyncio.to_thread(spec.probe, False))
        return spec
