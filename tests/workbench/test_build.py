"""The Workbench build shipped in the Python package matches its sources, and stays within its budget."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from pathlib import Path

from conftest import REPO

SOURCES = REPO / "workbench"
BUILD = REPO / "host" / "static" / "workbench"
INPUTS = ["index.html", "package.json", "package-lock.json", "vite.config.js", "src"]  # as scripts/stamp.mjs


def sources_hash() -> str:
    """The hash scripts/stamp.mjs records at build time: each file's path and bytes, in name order."""
    h = hashlib.sha256()

    def files(path: Path) -> list[Path]:
        if path.is_dir():
            return [f for child in sorted(path.iterdir(), key=lambda p: p.name) for f in files(child)]
        return [path]

    for file in [f for name in INPUTS for f in files(SOURCES / name)]:
        h.update(file.relative_to(SOURCES).as_posix().encode() + b"\0" + file.read_bytes() + b"\0")
    return h.hexdigest()


def test_the_shipped_build_was_made_from_the_current_sources() -> None:
    recorded = json.loads((BUILD / "build.json").read_text())["sources"]
    assert recorded == sources_hash(), (
        "host/static/workbench/ is older than workbench/: run `npm ci && npm run build` in workbench/ and commit")


def test_the_page_loads_only_its_own_assets_within_the_size_budget() -> None:
    index = (BUILD / "index.html").read_text()
    assets = re.findall(r'(?:src|href)="/__steppe/ui/assets/([^"]+)"', index)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    assert not re.search(r'(?:src|href)="(?:https?:)?//', index), "the page must not load anything from elsewhere"
    total = 0
    for name in assets:
        assert re.search(r"-[A-Za-z0-9_-]{8}\.(js|css)$", name), f"{name} has no content hash (served immutable)"
        total += len(gzip.compress((BUILD / "assets" / name).read_bytes()))
    assert total <= 400 * 1024
