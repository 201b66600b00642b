"""Writing the generated files, and regenerating them under `dev` after a reload."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..filewrite import write_whole
from .model import ProjectTypes, project_types
from .py import python_stubs
from .ts import typescript_declarations

if TYPE_CHECKING:
    from ..project import Project

TS_FILE, PY_FILE = "types.d.ts", "steppe_types.py"


def write_types(out: Path, types: ProjectTypes) -> bool:
    """Writes both files into `out`; only files whose text changed are written (a watcher of `out` is
    not woken for nothing). Each is replaced whole (an editor reading it mid-write sees the old text or
    the new, never a truncated one). Returns whether anything changed."""
    changed = False
    for name, text in ((TS_FILE, typescript_declarations(types)), (PY_FILE, python_stubs(types))):
        path = out / name
        if not path.exists() or path.read_text() != text:
            write_whole(path, text)
            changed = True
    return changed


def regenerate_if_present(project: Project, root: Path) -> bool:
    """Under `dev`: after a reload, rewrite the types at the project root when they were generated there
    before (a project that never ran `steppe generate types` gets no files)."""
    if not ((root / TS_FILE).exists() or (root / PY_FILE).exists()):
        return False
    return write_types(root, project_types(project.ok_steps(), list(project.streams.values())))
