"""Loading a Python step file for a unit test, from its path (step files are not importable packages)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_step(path: str | Path) -> ModuleType:
    """The step module at `path`: `load_step("steps/remember_step.py").handler`. The project root (the
    nearest folder above it with a steppe.toml or a steps/ folder) goes on sys.path first, as the runner
    does, so `import steps.lib`-style imports work."""
    path = Path(path).resolve()
    root = next((d for d in path.parents if (d / "steppe.toml").exists() or (d / "steps").is_dir()), path.parent)
    spec = importlib.util.spec_from_file_location(f"steppe_step_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} is not a Python file")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
