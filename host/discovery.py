"""Finding step, stream and auth files under a project (the Motia 0.x naming rules, motia-compat.md)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .wire import LoadKind

SEARCHED = ("steps", "src")
SKIPPED_DIRS = {"node_modules", "venv", ".venv", "env", "__pycache__", "dist", "build"}
_STEP = re.compile(r"(\.step|_step)\.(ts|mts|cts|js|mjs|cjs|py|rb)$")
_STREAM = re.compile(r"(\.stream|_stream)\.(ts|mts|cts|js|mjs|cjs|py|rb)$")
_AUTH = re.compile(r"^(steppe\.auth|steppe_auth|auth\.steppe)\.(ts|js|py|rb)$")
AUTH_STEMS = ("steppe.auth", "steppe_auth", "auth.steppe")


@dataclass(frozen=True)
class SourceFile:
    path: Path
    kind: LoadKind


def discover(root: Path, extra_extensions: tuple[str, ...] = ()) -> list[SourceFile]:
    """Step and stream files in `steps/` and `src/` (recursively), sorted for a stable order.

    `extra_extensions` are suffixes that registered third-party runners handle (e.g. ".lua"): every rule
    applies to them as to the built-in ones (`*.step<ext>` / `*_step<ext>` steps, `*.stream<ext>` /
    `*_stream<ext>` streams).
    """
    found: list[SourceFile] = []
    for folder in SEARCHED:
        base = root / folder
        if not base.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS and not d.startswith("."))
            for name in sorted(filenames):
                if kind := classify(Path(name), extra_extensions):
                    found.append(SourceFile(Path(dirpath) / name, kind))
    return found


def classify(path: Path, extra_extensions: tuple[str, ...] = ()) -> LoadKind | None:
    """"step", "stream", or None for a file that is neither (by name alone)."""
    name = path.name
    if _STEP.search(name) or any(name.endswith((f".step{e}", f"_step{e}")) for e in extra_extensions):
        return "step"
    if _STREAM.search(name) or any(name.endswith((f".stream{e}", f"_stream{e}")) for e in extra_extensions):
        return "stream"
    return None


def find_auth_file(root: Path, configured: str | None, extra_extensions: tuple[str, ...] = ()) -> Path | None:
    """The project's stream authenticate hook: `steppe.toml`'s `auth`, else a conventional file name
    (`steppe_auth.<ext>`, `steppe.auth.<ext>`, `auth.steppe.<ext>`, for every registered extension)."""
    if configured:
        return (root / configured).resolve()
    extra = {f"{stem}{e}" for stem in AUTH_STEMS for e in extra_extensions}
    for folder in (root, *(root / f for f in SEARCHED)):
        if folder.is_dir():
            for child in sorted(folder.iterdir()):
                if _AUTH.match(child.name) or child.name in extra:
                    return child
    return None
