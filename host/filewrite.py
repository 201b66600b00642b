"""Files that readers must never see half-written (the host file, the probe cache, generated types): the
text goes to a temporary file beside it, named by this process (several may write the same file at once),
which then replaces the file whole."""

from __future__ import annotations

import os
from pathlib import Path


def write_whole(path: Path, text: str) -> None:
    """Replace `path` with `text` in one step; on failure (a full disk) no partial copy is left behind and the
    OSError is raised. The temporary name starts with a dot and ends in .tmp: `dev`'s watcher skips it."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        partial.write_text(text)
        os.replace(partial, path)
    except OSError:
        partial.unlink(missing_ok=True)
        raise
