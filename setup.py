"""Build hook: the wheel carries the language runners (the repo's `runners/` folder, which stays where it is)
as `steppe/_runners/`, with the Node runner's npm dependencies, so an installed Steppe needs neither the
source checkout nor npm to start its runners. Everything else is declared in pyproject.toml.

If runners/node/node_modules is missing or does not match package-lock.json, the build runs `npm ci` there
(npm from PATH, else nodejs-bin's). The sdist carries node_modules too, so a wheel built from it needs no npm.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent
RUNNERS = HERE / "runners"
NODE_RUNNER = RUNNERS / "node"
LANGUAGES = ("python", "node", "ruby")
# what a runner never needs at run time: caches, the repo's install script, and in node_modules the
# TypeScript sources and declarations, source maps, docs and npm's own bookkeeping (licences stay)
SKIPPED_NAMES = {"__pycache__", ".bin", ".package-lock.json", "setup.sh", ".DS_Store"}
SKIPPED_IN_NODE_MODULES = (".ts", ".mts", ".cts", ".map", ".md", ".markdown")


def _node_modules_current() -> bool:
    """Every package package-lock.json pins is installed, at the pinned version."""
    lock = json.loads((NODE_RUNNER / "package-lock.json").read_text())
    for key, entry in lock.get("packages", {}).items():
        if not key or entry.get("dev") or entry.get("optional"):
            continue
        manifest = NODE_RUNNER / key / "package.json"
        if not manifest.is_file() or json.loads(manifest.read_text()).get("version") != entry.get("version"):
            return False
    return True


def ensure_node_modules() -> None:
    if not (NODE_RUNNER / "package-lock.json").is_file():
        return  # an sdist made without the lockfile: node_modules is whatever it carries
    if (NODE_RUNNER / "node_modules").is_dir() and _node_modules_current():
        return
    npm = shutil.which("npm")
    command = [npm] if npm else [sys.executable, "-m", "nodejs.npm"]
    print(f"steppe build: installing the Node runner's dependencies ({' '.join(command)} ci)", flush=True)
    try:
        subprocess.run([*command, "ci", "--omit=dev", "--no-audit", "--no-fund", "--loglevel=error"],
                       cwd=NODE_RUNNER, check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        raise SystemExit(f"steppe build: `npm ci` in runners/node failed ({e}); install Node.js >= 18 with npm, "
                         "or run it there yourself, then build again") from e


def _skipped(relative: Path) -> bool:
    if any(part in SKIPPED_NAMES or part.endswith((".pyc", ".pyo")) for part in relative.parts):
        return True
    return "node_modules" in relative.parts and relative.name.endswith(SKIPPED_IN_NODE_MODULES)


def copy_runners(target: Path) -> list[str]:
    written = []
    for language in LANGUAGES:
        source = RUNNERS / language
        for path in sorted(source.rglob("*")):
            relative = path.relative_to(RUNNERS)
            if path.is_dir() or _skipped(relative):
                continue
            out = target / relative
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, out)  # follows symlinks: the wheel holds plain files
            written.append(str(out))
    return written


class BuildPyWithRunners(build_py):
    def run(self) -> None:
        if not self.editable_mode:  # a module deleted from host/ must not linger in the next wheel
            shutil.rmtree(Path(self.build_lib) / "steppe", ignore_errors=True)
        super().run()
        if self.editable_mode:  # an editable install runs the runners from the checkout (host/runners/registry.py)
            return
        for cache in list((Path(self.build_lib) / "steppe").rglob("__pycache__")):  # package data globs take these too
            shutil.rmtree(cache)
        ensure_node_modules()
        target = Path(self.build_lib) / "steppe" / "_runners"
        shutil.rmtree(target, ignore_errors=True)
        self._runner_files = copy_runners(target)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), *getattr(self, "_runner_files", [])]


class SdistWithNodeModules(sdist):
    def run(self) -> None:
        ensure_node_modules()
        super().run()


setup(cmdclass={"build_py": BuildPyWithRunners, "sdist": SdistWithNodeModules})
