"""Finding things on disk: vectors, the fixture set of a language, and the language of a runner command."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROTOCOL_DIR = Path(__file__).resolve().parents[1]
VECTORS_DIR = PROTOCOL_DIR / "vectors"
FIXTURES_DIR = PROTOCOL_DIR / "fixtures"

# `greet_step.py`, `greet.step.ts`, `chat_stream.rb`, `chat.stream.js` → logical name and load kind.
_FIXTURE_NAME = re.compile(r"^(?P<name>.+?)[._](?P<kind>step|stream)\.[a-z]+$")
# the host's names for a project's stream-auth file (host/discovery.py): steppe.auth.ts, steppe_auth.py, …
_AUTH_NAME = re.compile(r"^(steppe\.auth|steppe_auth|auth\.steppe)\.[a-z]+$")


@dataclass(frozen=True)
class Fixture:
    name: str
    path: str
    kind: str  # "step" | "stream" | "auth"


class Fixtures:
    """One language's fixture project: `<root>/steps/**` holds steps and streams, `<root>/steppe_auth.*`
    (or `steppe.auth.*`) the auth file, whose logical name is `auth`."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.by_name: dict[str, Fixture] = {}
        for path in sorted((self.root / "steps").rglob("*")):
            if path.is_file() and (m := _FIXTURE_NAME.match(path.name)):
                self._add(Fixture(m["name"], str(path), m["kind"]))
        for path in sorted(self.root.iterdir()):
            if path.is_file() and _AUTH_NAME.match(path.name):
                self._add(Fixture("auth", str(path), "auth"))

    def _add(self, fixture: Fixture) -> None:
        if fixture.name in self.by_name:
            raise ValueError(f"two fixtures named {fixture.name!r}: {self.by_name[fixture.name].path}, "
                             f"{fixture.path}")
        self.by_name[fixture.name] = fixture

    def __getitem__(self, name: str) -> Fixture:
        try:
            return self.by_name[name]
        except KeyError:
            raise KeyError(f"no fixture {name!r} in {self.root}") from None


def load_vectors(directory: Path = VECTORS_DIR, only: str | None = None) -> list[dict[str, Any]]:
    """All vectors in file-name order; `only` keeps those whose name contains it."""
    vectors = []
    for path in sorted(directory.glob("*.json")):
        vector = json.loads(path.read_text())
        vector.setdefault("name", path.stem)
        if only is None or only in vector["name"]:
            vectors.append(vector)
    return vectors


_LANG_HINTS = [("python", ("python", ".py")), ("node", ("node", ".js", ".mjs", ".cjs", ".ts")),
               ("ruby", ("ruby", ".rb"))]


def guess_language(argv: list[str]) -> str | None:
    """The fixture set for a runner command: by interpreter name first, then by script extension."""
    names = [os.path.basename(arg) for arg in argv]
    for lang, (interpreter, *_) in _LANG_HINTS:
        if any(n == interpreter or re.fullmatch(rf"{interpreter}[\d.]*", n) for n in names):
            return lang
    for lang, (_, *extensions) in _LANG_HINTS:
        if any(n.endswith(ext) for n in names for ext in extensions):
            return lang
    return None


def absolute_command(argv: list[str]) -> list[str]:
    """The command with its file arguments made absolute: runners start in the project root, as the host
    starts them, not in the folder the kit was called from."""
    return [os.path.abspath(arg) if (i > 0 or os.sep in arg) and os.path.exists(arg) else arg
            for i, arg in enumerate(argv)]


def runner_markers(argv: list[str]) -> list[str]:
    """Path fragments that identify the runner's own stack frames: the folders of its script arguments,
    both as written and absolute (Ruby prints paths as required, Python and Node absolute ones)."""
    markers: set[str] = set()
    for i, arg in enumerate(argv):
        # argv[0] is usually an interpreter, whose folder says nothing; a script run directly has a suffix
        if os.path.isfile(arg) and (i > 0 or os.path.splitext(arg)[1]):
            for folder in (os.path.dirname(arg), os.path.dirname(os.path.abspath(arg))):
                if folder and folder != ".":
                    markers.add(folder.rstrip("/") + "/")
    return sorted(markers)
