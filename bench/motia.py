"""S10's optional peer: Motia 0.17 from npm serving the same JS API step (`--peers`). Installed once by
bench/peers/setup-motia into bench/peers/motia/node_modules, never at bench run time; without it (or what
it needs) the row is skipped with the reason."""

from __future__ import annotations

import shutil
from pathlib import Path

from .procs import REPO, Server, free_port

MOTIA_DIR = REPO / "bench" / "peers" / "motia"
MOTIA_VERSION = "0.17"
MOTIA_CLI = MOTIA_DIR / "node_modules" / "motia" / "dist" / "cli.mjs"


def why_not_motia() -> str | None:
    """Why the Motia peer cannot run on this machine ("skipped: ..."), or None when it can."""
    if not (MOTIA_DIR / "node_modules").is_dir():
        return "skipped: bench/peers/motia/node_modules is missing (run bench/peers/setup-motia once)"
    if not MOTIA_CLI.exists():
        return f"skipped: {MOTIA_CLI.relative_to(REPO)} is missing (re-run bench/peers/setup-motia)"
    if shutil.which("node") is None:
        return "skipped: no node on PATH"
    return None


def motia_server(work: Path) -> Server:
    """`motia start` on a copy of bench/peers/motia (its node_modules linked, not copied), on a free port."""
    project = work / "motia"
    shutil.copytree(MOTIA_DIR, project, ignore=shutil.ignore_patterns("node_modules", ".motia"))
    (project / "node_modules").symlink_to(MOTIA_DIR / "node_modules", target_is_directory=True)
    port = free_port()
    node = shutil.which("node") or "node"
    return Server([node, str(MOTIA_CLI), "start", "--port", str(port), "--host", "127.0.0.1"], port,
                  work / f"motia-{port}.log", cwd=project)
